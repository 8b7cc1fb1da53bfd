// The pages' modules import './relay-client.js' from /static/, where the
// relay serves web/client/relay-client.js (the client's one file, also its
// npm package). Node runs them from web/static/, so this maps that import
// to the client's file: node --import ./lib/static-client.mjs --test unit/
import { register } from 'node:module';

register('./static-client-hook.mjs', import.meta.url);
