package lab

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// svgTexts parses an SVG drawing as XML and returns its text elements.
func svgTexts(t *testing.T, svg string) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var texts []string
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return texts
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			inText = x.Name.Local == "text"
			if x.Name.Local == "svg" && x.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("svg element in namespace %q", x.Name.Space)
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(x))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

func TestTopologySVG(t *testing.T) {
	l := testLab()
	texts := svgTexts(t, topologySVG(l, map[string]string{"rs2": "MTU 1400"}))
	for _, want := range []string{"client", "router", "director", "rs1", "rs2", "eth0 198.18.0.12", "02:00:c6:12:00:0c", "MTU 1400",
		"routed link 198.18.1.0/24", "LAN 198.18.0.0/24: bridge br0 in namespace x-switch"} {
		if !slices.Contains(texts, want) {
			t.Errorf("drawing lacks %q: %q", want, texts)
		}
	}
}

// TestTopologyCaptionNamesTheChangedServer: the caption says every real
// server stays silent on ARP for the VIP, except one a scenario marked
// (arp-flux's rs1 answers); it said all did, under rs1 drawn in red.
func TestTopologyCaptionNamesTheChangedServer(t *testing.T) {
	l := testLab()
	for _, tc := range []struct {
		marks map[string]string
		want  string
	}{
		{nil, "every real server holds it on lo and stays silent."},
		{map[string]string{"rs1": "arp_ignore=0 arp_announce=0"}, "stays silent, but rs1 (marked in red)."},
		{map[string]string{"director": "ip_forward=1"}, "every real server holds it on lo and stays silent."},
		{map[string]string{"rs1": "MTU 1400 on a 1500 LAN"}, "every real server holds it on lo and stays silent."},
	} {
		texts := svgTexts(t, topologySVG(l, tc.marks))
		if !slices.ContainsFunc(texts, func(s string) bool { return strings.HasSuffix(s, tc.want) }) {
			t.Errorf("marks %v: no caption ending %q: %q", tc.marks, tc.want, texts)
		}
	}
}

func TestSeqDiagramSVG(t *testing.T) {
	l := testLab()
	d := &seqDiagram{lanes: lanes(l, l.Client, l.Router, l.Director, l.RealServers[0])}
	d.msg(0, 1, kindReq, "SYN <a> & \"b\"", "eth x → y")
	d.msg(1, 3, kindARP, "who-has", "").broadcast = true
	d.msg(1, 2, kindBad, "dropped", "").lost = true
	d.note("a note")
	d.msg(3, 1, kindReply, "SYN-ACK", "")
	svg := d.svg()
	texts := svgTexts(t, svg)
	for _, want := range []string{"client", "router", "director", "rs1", "198.18.1.1 | 198.18.0.1", "SYN <a> & \"b\"", "a note", "SYN-ACK"} {
		if !slices.Contains(texts, want) {
			t.Errorf("diagram lacks %q: %q", want, texts)
		}
	}
	for _, class := range []string{"arrow-req", "arrow-arp", "arrow-bad", "arrow-reply", `stroke-dasharray="6 4"`} {
		if !strings.Contains(svg, class) {
			t.Errorf("diagram lacks %s", class)
		}
	}
}

// TestPage: one self-contained page, nothing fetched, checks listed,
// text escaped and drawings inline.
func TestPage(t *testing.T) {
	l := testLab()
	p := page{title: "drlb lab <test>"}
	p.add("The network", topologySVG(l, nil), "a <b>paragraph</b>")
	var cs checks
	cs.add("good", true, "1 of 1")
	cs.add("bad & broken", false, "0 of 1")
	var b bytes.Buffer
	if err := p.render(&b, cs, "footer"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"<!DOCTYPE html>", "drlb lab &lt;test&gt;", "a &lt;b&gt;paragraph&lt;/b&gt;", "<figure><svg xmlns=",
		`<td class="pass">PASS</td><td>good</td>`, `<td class="fail">FAIL</td><td>bad &amp; broken</td>`, "footer"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(out, bad) {
			t.Errorf("page has %q: it must need nothing from elsewhere", bad)
		}
	}
}
