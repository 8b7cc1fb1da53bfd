package sim

import "encoding/xml"

// Call variable layouts: GET /finesse/api/User/{id}/MediaPropertiesLayouts
// (Finesse "User—Get List of Media Properties Layouts"; TeamResource from
// 12.5). A layout names the call and ECC variables a desktop shows and the
// label of each: one header entry and up to two columns.

// mediaPropertiesLayoutsXML is the list.
type mediaPropertiesLayoutsXML struct {
	XMLName xml.Name                   `xml:"MediaPropertiesLayouts"`
	Layouts []mediaPropertiesLayoutXML `xml:"MediaPropertiesLayout"`
}

type mediaPropertiesLayoutXML struct {
	URI         string            `xml:"uri"`
	ID          string            `xml:"id"`
	Name        string            `xml:"name"`
	Description string            `xml:"description"`
	Type        string            `xml:"type"`
	Header      layoutEntryXML    `xml:"header>entry"`
	Columns     []layoutColumnXML `xml:"column"`
}

type layoutColumnXML struct {
	Entries []layoutEntryXML `xml:"entry"`
}

type layoutEntryXML struct {
	DisplayName   string `xml:"displayName"`
	MediaProperty string `xml:"mediaProperty"`
}

// defaultLayout labels the generator's call variables.
func defaultLayout() *mediaPropertiesLayoutsXML {
	return &mediaPropertiesLayoutsXML{Layouts: []mediaPropertiesLayoutXML{{
		URI: "/finesse/api/MediaPropertiesLayout/1", ID: "1", Name: "Default Layout", Type: "DEFAULT",
		Description: "The demo's call variable layout",
		Header:      layoutEntryXML{DisplayName: "Account", MediaProperty: "callVariable1"},
		Columns: []layoutColumnXML{
			{Entries: []layoutEntryXML{{DisplayName: "Reason for calling", MediaProperty: "callVariable2"}, {DisplayName: "Customer tier", MediaProperty: "user.CustomerTier"}}},
			{Entries: []layoutEntryXML{{DisplayName: "Queue", MediaProperty: "queueName"}, {DisplayName: "Dialed number", MediaProperty: "dialedNumber"}}},
		},
	}}}
}
