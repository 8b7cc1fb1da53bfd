// Resolve hook for static-client.mjs.
const client = new URL('../../client/relay-client.js', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === './relay-client.js' && context.parentURL && context.parentURL.includes('/web/static/')) {
    return { url: client, shortCircuit: true };
  }
  return next(specifier, context);
}
