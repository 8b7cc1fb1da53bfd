package xmpp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"

	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Namespaces used by the stream features.
const (
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
)

// maxSASLText bounds the server's <text> kept in a SASL error.
const maxSASLText = 200

// startTLS wraps mellium's STARTTLS feature so that the size and depth
// limits keep applying to the XML inside TLS: the plain-text limiter below
// stops scanning (it now sees TLS records) and a fresh one wraps the TLS
// connection.
func startTLS(tc *tls.Config, lower *limitConn, maxSize int64, maxDepth int, ls *linkState) mxmpp.StreamFeature {
	f := mxmpp.StartTLS(tc)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *mxmpp.Session, data any) (mxmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil || rw == nil {
			return mask, rw, err
		}
		tlsConn, ok := rw.(*tls.Conn)
		if !ok {
			return mask, rw, fmt.Errorf("xmpp: starttls: unexpected connection type %T", rw)
		}
		// Handshake now, bounded by the dial context, so that a certificate
		// problem is reported as such.
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			return 0, nil, fmt.Errorf("xmpp: starttls handshake: %w", err)
		}
		lower.pass.Store(true)
		return mask, newLimitConn(tlsConn, maxSize, maxDepth, ls), nil
	}
	return f
}

// saslPlain is SASL PLAIN (RFC 4616), the only mechanism Finesse supports.
// Unlike mellium's SASL feature it reports the server's <failure/>
// condition in a form we can classify (saslError), and it refuses to run
// on a link that is not marked Secure.
func saslPlain(username, password string) mxmpp.StreamFeature {
	return mxmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASL, Local: "mechanisms"},
		Necessary:  mxmpp.Secure,
		Prohibited: mxmpp.Authn,
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			var parsed struct {
				List []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanism"`
			}
			err := d.DecodeElement(&parsed, start)
			return true, parsed.List, err
		},
		Negotiate: func(ctx context.Context, s *mxmpp.Session, data any) (mxmpp.SessionState, io.ReadWriter, error) {
			if s.State()&mxmpp.Secure == 0 {
				return 0, nil, fmt.Errorf("%w: the stream is not encrypted", ErrInsecure)
			}
			mechs, _ := data.([]string)
			if !slices.Contains(mechs, "PLAIN") {
				return 0, nil, fmt.Errorf("xmpp: sasl: server does not offer PLAIN (offers %q)", mechs)
			}
			// authzid empty, authcid = loginId, password = password or token.
			msg := make([]byte, 0, 2+len(username)+len(password))
			msg = append(msg, 0)
			msg = append(msg, username...)
			msg = append(msg, 0)
			msg = append(msg, password...)
			payload := base64.StdEncoding.EncodeToString(msg)
			clear(msg)

			w := s.TokenWriter()
			_, err := xmlstream.Copy(w, xmlstream.Wrap(
				xmlstream.Token(xml.CharData(payload)),
				xml.StartElement{Name: xml.Name{Space: nsSASL, Local: "auth"},
					Attr: []xml.Attr{{Name: xml.Name{Local: "mechanism"}, Value: "PLAIN"}}},
			))
			if err == nil {
				err = w.Flush()
			}
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return 0, nil, fmt.Errorf("xmpp: sasl: send auth: %w", err)
			}

			r := s.TokenReader()
			defer r.Close()
			d := xml.NewTokenDecoder(r)
			start, err := nextStart(d)
			if err != nil {
				return 0, nil, fmt.Errorf("xmpp: sasl: %w", err)
			}
			switch start.Name {
			case xml.Name{Space: nsSASL, Local: "success"}:
				if err := d.Skip(); err != nil {
					return 0, nil, fmt.Errorf("xmpp: sasl: %w", err)
				}
				// Restart the stream on the same connection.
				return mxmpp.Authn, s.Conn(), nil
			case xml.Name{Space: nsSASL, Local: "failure"}:
				return 0, nil, decodeSASLFailure(d, start)
			case xml.Name{Space: stream.NS, Local: "error"}:
				var se stream.Error
				if err := d.DecodeElement(&se, &start); err != nil {
					return 0, nil, fmt.Errorf("xmpp: sasl: %w", err)
				}
				return 0, nil, se
			default:
				// PLAIN has no challenge step: anything else is a protocol error.
				return 0, nil, fmt.Errorf("xmpp: sasl: unexpected <%s xmlns=%q>", start.Name.Local, start.Name.Space)
			}
		},
	}
}

// decodeSASLFailure reads a <failure/> whose start tag was consumed.
func decodeSASLFailure(d *xml.Decoder, start xml.StartElement) error {
	e := &saslError{}
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("xmpp: sasl failure: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "text" {
				var txt string
				if err := d.DecodeElement(&txt, &t); err != nil {
					return fmt.Errorf("xmpp: sasl failure: %w", err)
				}
				if len(txt) > maxSASLText {
					txt = txt[:maxSASLText]
				}
				e.Text = txt
				continue
			}
			if e.Condition == "" {
				e.Condition = t.Name.Local
			}
			if err := d.Skip(); err != nil {
				return fmt.Errorf("xmpp: sasl failure: %w", err)
			}
		case xml.EndElement:
			if e.Condition == "" {
				e.Condition = "undefined"
			}
			return e
		}
	}
}

// nextStart returns the next start element, skipping whitespace.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, io.ErrUnexpectedEOF
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			// whitespace between elements
		default:
			return xml.StartElement{}, fmt.Errorf("unexpected %T", tok)
		}
	}
}

// bindNamed binds the configured resource. mellium v0.22.0's BindResource
// sends an empty <resource/> (it writes the JID instead of the resource),
// so the server would pick a random one; Finesse wants a named resource.
// If the server advertised a required (legacy, RFC 3921) session
// establishment, that IQ is sent right after binding.
func bindNamed(resource string) mxmpp.StreamFeature {
	return mxmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  mxmpp.Authn,
		Prohibited: mxmpp.Ready,
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *mxmpp.Session, data any) (mxmpp.SessionState, io.ReadWriter, error) {
			var resp struct {
				Bind struct {
					JID string `xml:"jid"`
				} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
			}
			payload := xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData(resource)), xml.StartElement{Name: xml.Name{Local: "resource"}}),
				xml.StartElement{Name: xml.Name{Space: nsBind, Local: "bind"}},
			)
			if err := negotiationIQ(s, stanza.SetIQ, payload, &resp); err != nil {
				var se stanza.Error
				if errors.As(err, &se) && se.Condition == stanza.Conflict {
					return 0, nil, &SessionError{Reason: ReasonConflict, Err: fmt.Errorf("xmpp: bind %q: %w", resource, err)}
				}
				return 0, nil, fmt.Errorf("xmpp: bind %q: %w", resource, err)
			}
			j, err := jid.Parse(resp.Bind.JID)
			if err != nil || j.Resourcepart() == "" {
				return 0, nil, fmt.Errorf("xmpp: bind %q: server returned JID %q", resource, resp.Bind.JID)
			}
			s.UpdateAddr(j)
			if v, _ := s.Feature(nsSession); v == true {
				payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsSession, Local: "session"}})
				if err := negotiationIQ(s, stanza.SetIQ, payload, nil); err != nil {
					return 0, nil, fmt.Errorf("xmpp: session establishment: %w", err)
				}
			}
			return mxmpp.Ready, nil, nil
		},
	}
}

// sessionInfo parses the legacy session establishment feature; its data
// is true when the server requires the session IQ (no <optional/>). It is
// informational: bindNamed sends the IQ.
func sessionInfo() mxmpp.StreamFeature {
	return mxmpp.StreamFeature{
		Name:      xml.Name{Space: nsSession, Local: "session"},
		Necessary: mxmpp.Authn,
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			var parsed struct {
				Optional *struct{} `xml:"optional"`
			}
			err := d.DecodeElement(&parsed, start)
			return false, parsed.Optional == nil, err
		},
	}
}

// negotiationIQ sends an IQ during stream negotiation (before Serve runs)
// and reads its answer directly from the stream. An error answer is
// returned as a stanza.Error; a result's first child is decoded into v.
func negotiationIQ(s *mxmpp.Session, typ stanza.IQType, payload xml.TokenReader, v any) error {
	id := randomID()
	w := s.TokenWriter()
	// The namespace must be explicit: RFC 7395 framing has no stream
	// element to declare it.
	iq := stanza.IQ{XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"}, ID: id, Type: typ}
	_, err := xmlstream.Copy(w, iq.Wrap(payload))
	if err == nil {
		err = w.Flush()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r := s.TokenReader()
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	start, err := nextStart(d)
	if err != nil {
		return err
	}
	if start.Name.Local != "iq" {
		if start.Name == (xml.Name{Space: stream.NS, Local: "error"}) {
			var se stream.Error
			if err := d.DecodeElement(&se, &start); err != nil {
				return err
			}
			return se
		}
		return fmt.Errorf("expected an iq, got <%s>", start.Name.Local)
	}
	if rid := attrValue(start, "id"); rid != id {
		return fmt.Errorf("answer to iq %q has id %q", id, rid)
	}
	return decodeIQAnswer(d, start, v)
}
