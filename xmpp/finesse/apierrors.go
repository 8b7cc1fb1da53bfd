package finesse

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// APIErrors is a Finesse error report: the synchronous body of a failed
// REST request (<ApiErrors><ApiError><ErrorType>..., C.2) and the data of an
// asynchronous error notification (<apiErrors><apiError><errorData>...,
// B.8). Both forms decode into the same value.
//
// *APIErrors implements error, so the Parse functions can return it when a
// body holds an error report instead of the object asked for.
type APIErrors struct {
	Errors []APIError `json:"apiErrors"`
}

// APIError is one error of an APIErrors report.
type APIError struct {
	// ErrorType is the category, e.g. "Call Operation Failure",
	// "Authentication Failure", "Device Busy".
	ErrorType string `json:"errorType"`
	// ErrorMessage is the constant, e.g. CF_RESOURCE_OUT_OF_SERVICE.
	ErrorMessage string `json:"errorMessage"`
	// ErrorData is the detail: a CTI error code, a user id.
	ErrorData string `json:"errorData"`
	// ErrorMedia is the media routing domain id of a Media error, else "".
	ErrorMedia string `json:"errorMedia"`
	// Overrideable is Finesse's <Overrideable> flag of the error (sent by
	// some releases; Cisco's error pages do not describe it). False when
	// absent.
	Overrideable bool `json:"overrideable"`
	// Extra keeps the error's unknown child elements.
	Extra []Raw `json:"extra,omitempty"`
}

// Kind returns KindAPIErrors.
func (*APIErrors) Kind() string { return KindAPIErrors }

// Error summarises the report, e.g. "finesse: Call Operation Failure:
// CF_RESOURCE_OUT_OF_SERVICE (34)".
func (e *APIErrors) Error() string {
	if len(e.Errors) == 0 {
		return "finesse: empty apiErrors"
	}
	var b strings.Builder
	b.WriteString("finesse: ")
	for i, x := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		if x.ErrorType != "" {
			b.WriteString(x.ErrorType)
			b.WriteString(": ")
		}
		b.WriteString(x.ErrorMessage)
		if x.ErrorData != "" {
			b.WriteString(" (")
			b.WriteString(x.ErrorData)
			b.WriteString(")")
		}
	}
	return b.String()
}

// MarshalJSON writes apiErrors as an array, [] when empty.
func (e APIErrors) MarshalJSON() ([]byte, error) {
	type plain APIErrors
	if e.Errors == nil {
		e.Errors = []APIError{}
	}
	return marshalJSON(plain(e))
}

// restAPIErrors and dataAPIErrors are the two XML forms.
type restAPIErrors struct {
	XMLName xml.Name       `xml:"ApiErrors"`
	Errors  []restAPIError `xml:"ApiError"`
}

type restAPIError struct {
	ErrorType    string `xml:"ErrorType"`
	ErrorMessage string `xml:"ErrorMessage"`
	ErrorData    string `xml:"ErrorData"`
	ErrorMedia   string `xml:"ErrorMedia,omitempty"`
	Overrideable bool   `xml:"Overrideable,omitempty"`
	Extra        []Raw  `xml:",any"`
}

type dataAPIErrors struct {
	XMLName xml.Name       `xml:"apiErrors"`
	Errors  []dataAPIError `xml:"apiError"`
}

type dataAPIError struct {
	ErrorData    string `xml:"errorData"`
	ErrorMedia   string `xml:"errorMedia,omitempty"`
	ErrorMessage string `xml:"errorMessage"`
	ErrorType    string `xml:"errorType"`
	Overrideable bool   `xml:"overrideable,omitempty"`
	Extra        []Raw  `xml:",any"`
}

// MarshalXML writes the REST form, <ApiErrors><ApiError><ErrorType>...,
// whatever element name the caller asks for. EncodeData writes the
// notification form.
func (e APIErrors) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	v := restAPIErrors{Errors: make([]restAPIError, len(e.Errors))}
	for i, x := range e.Errors {
		v.Errors[i] = restAPIError(x)
	}
	return enc.Encode(v)
}

func (e *APIErrors) dataForm() dataAPIErrors {
	v := dataAPIErrors{Errors: make([]dataAPIError, len(e.Errors))}
	for i, x := range e.Errors {
		v.Errors[i] = dataAPIError{ErrorData: x.ErrorData, ErrorMedia: x.ErrorMedia, ErrorMessage: x.ErrorMessage, ErrorType: x.ErrorType,
			Overrideable: x.Overrideable, Extra: x.Extra}
	}
	return v
}

// UnmarshalXML decodes either form of an error report.
func (e *APIErrors) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, e.decode)
}

func (e *APIErrors) decode(n *elem) error {
	*e = APIErrors{}
	for c := n.child; c != nil; c = c.next {
		var x APIError
		for f := c.child; f != nil; f = f.next {
			var err error
			switch f.key {
			case "errortype":
				x.ErrorType = f.text
			case "errormessage":
				x.ErrorMessage = f.text
			case "errordata":
				x.ErrorData = f.text
			case "errormedia":
				x.ErrorMedia = f.text
			case "overrideable":
				x.Overrideable, err = parseBool(f)
			default:
				x.Extra = append(x.Extra, rawOf(f))
			}
			if err != nil {
				return fmt.Errorf("<%s>: %w", c.name, err)
			}
		}
		e.Errors = append(e.Errors, x)
	}
	return nil
}
