package lab

import (
	"fmt"
	"html"
	"strings"
)

// svgDoc builds one SVG drawing as text. Every string drawn is escaped;
// the drawing carries its own styles, so the same text works inline in the
// HTML page and as a standalone .svg file.
type svgDoc struct {
	b    strings.Builder
	w, h int
}

// svgStyle is shared by every drawing: colours by what a frame is.
const svgStyle = `
text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 12px; fill: #222; }
.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 10.5px; fill: #444; }
.name { font-size: 14px; font-weight: bold; }
.title { font-size: 15px; font-weight: bold; }
.small { font-size: 11px; fill: #555; }
.mark { font-size: 11px; fill: #c62828; font-weight: bold; }
.box { fill: #f7f9fc; stroke: #4a5a70; stroke-width: 1.2; }
.box-director { fill: #e8f0fe; stroke: #1a56b0; stroke-width: 1.8; }
.box-marked { fill: #fdecea; stroke: #c62828; stroke-width: 1.8; }
.wire { stroke: #4a5a70; stroke-width: 1.5; fill: none; }
.bus { stroke: #4a5a70; stroke-width: 5; }
.life { stroke: #9aa5b5; stroke-width: 1; stroke-dasharray: 4 4; }
.note { fill: #fff8e1; stroke: #e0b000; stroke-width: 1; }
.arrow-req { stroke: #1a56b0; fill: #1a56b0; }
.arrow-reply { stroke: #2e7d32; fill: #2e7d32; }
.arrow-arp { stroke: #7b1fa2; fill: #7b1fa2; }
.arrow-bad { stroke: #c62828; fill: #c62828; }
.arrow-vrrp { stroke: #e65100; fill: #e65100; }
.label-req { fill: #1a56b0; }
.label-reply { fill: #2e7d32; }
.label-arp { fill: #7b1fa2; }
.label-bad { fill: #c62828; }
.label-vrrp { fill: #e65100; }
`

func newSVG(w, h int) *svgDoc { return &svgDoc{w: w, h: h} }

func esc(s string) string { return html.EscapeString(s) }

func (s *svgDoc) printf(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

// text draws str at (x, y); anchor is start, middle or end.
func (s *svgDoc) text(x, y int, class, anchor, str string) {
	s.printf(`<text x="%d" y="%d" class="%s" text-anchor="%s">%s</text>`+"\n", x, y, class, anchor, esc(str))
}

func (s *svgDoc) rect(x, y, w, h int, class string) {
	s.printf(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" class="%s"/>`+"\n", x, y, w, h, class)
}

func (s *svgDoc) line(x1, y1, x2, y2 int, class string) {
	s.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" class="%s"/>`+"\n", x1, y1, x2, y2, class)
}

// arrow draws a line from (x1, y) to (x2, y) with a head at x2; dashed
// for broadcasts.
func (s *svgDoc) arrow(x1, x2, y int, kind string, dashed bool) {
	dir := 1
	if x2 < x1 {
		dir = -1
	}
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	s.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" class="arrow-%s" stroke-width="1.8"%s/>`+"\n", x1, y, x2-dir*8, y, kind, dash)
	s.printf(`<polygon points="%d,%d %d,%d %d,%d" class="arrow-%s"/>`+"\n", x2, y, x2-dir*10, y-5, x2-dir*10, y+5, kind)
}

// cross draws the X that ends a lost frame's arrow.
func (s *svgDoc) cross(x, y int) {
	s.printf(`<path d="M%d %d L%d %d M%d %d L%d %d" class="arrow-bad" stroke-width="3"/>`+"\n", x-7, y-7, x+7, y+7, x-7, y+7, x+7, y-7)
}

// String returns the whole drawing.
func (s *svgDoc) String() string {
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n"+
		`<style>%s</style>`+"\n"+`<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n%s</svg>\n",
		s.w, s.h, s.w, s.h, svgStyle, s.b.String())
}

// seqDiagram is a sequence diagram: one lane per host, one row per frame
// (or note), top to bottom in the order they happened.
type seqDiagram struct {
	lanes []seqLane
	rows  []seqRow
	// laneW is the distance between lanes; 0 means seqLaneW. Many lanes
	// take less, so the drawing fits the page.
	laneW int
}

// seqLane is a host: its name, and address lines under it.
type seqLane struct {
	name string
	sub  []string
}

// Kinds of rows: the colour of a frame, or a note across the lanes.
const (
	kindReq   = "req"   // client to server
	kindReply = "reply" // server to client
	kindARP   = "arp"   // ARP
	kindBad   = "bad"   // the trap: a frame that should not be
	kindVRRP  = "vrrp"  // a VRRP advert
	kindNote  = "note"  // a note across every lane
)

// seqRow is one frame from lane from to lane to (indexes into lanes), or
// a note. label says what the frame is, detail its addresses.
type seqRow struct {
	from, to      int
	kind          string
	label, detail string
	// broadcast draws the frame to every lane from from to to, dashed.
	broadcast bool
	// lost ends the arrow with an X before it reaches to: the frame was
	// dropped there. stub ends it with an X just after from: the frame
	// never left from.
	lost, stub bool
}

// Sequence diagram geometry.
const (
	seqMargin = 110 // left and right of the outer lanes, for labels
	seqLaneW  = 250
	seqHeadH  = 70
	seqRowH   = 52
	seqNoteH  = 38
)

func (d *seqDiagram) laneX(i int) int { return seqMargin + i*d.laneWidth() }

func (d *seqDiagram) laneWidth() int {
	if d.laneW > 0 {
		return d.laneW
	}
	return seqLaneW
}

// msg adds a frame.
func (d *seqDiagram) msg(from, to int, kind, label, detail string) *seqRow {
	d.rows = append(d.rows, seqRow{from: from, to: to, kind: kind, label: label, detail: detail})
	return &d.rows[len(d.rows)-1]
}

// note adds a note across the lanes.
func (d *seqDiagram) note(text string) {
	d.rows = append(d.rows, seqRow{kind: kindNote, label: text})
}

// svg draws the diagram.
func (d *seqDiagram) svg() string {
	width := 2*seqMargin + (len(d.lanes)-1)*d.laneWidth()
	height := seqHeadH + 20
	for _, r := range d.rows {
		if r.kind == kindNote {
			height += seqNoteH
		} else {
			height += seqRowH
		}
	}
	s := newSVG(width, height+10)
	// Lanes: a box with the host's name and addresses, a dashed life line.
	for i, l := range d.lanes {
		x := d.laneX(i)
		bw := min(196, d.laneWidth()-12)
		s.rect(x-bw/2, 8, bw, seqHeadH-14, "box")
		s.text(x, 27, "name", "middle", l.name)
		for j, sub := range l.sub {
			s.text(x, 42+j*12, "mono", "middle", sub)
		}
		s.line(x, seqHeadH-6, x, height, "life")
	}
	y := seqHeadH + 14
	for _, r := range d.rows {
		if r.kind == kindNote {
			s.rect(20, y+4, width-40, seqNoteH-10, "note")
			s.text(width/2, y+23, "", "middle", r.label)
			y += seqNoteH
			continue
		}
		ay := y + 26
		x1, x2 := d.laneX(r.from), d.laneX(r.to)
		dir := 1
		if x2 < x1 {
			dir = -1
		}
		end := x2
		switch {
		case r.stub:
			end = x1 + dir*60
		case r.lost:
			end = x2 - dir*28
		}
		s.arrow(x1, end, ay, r.kind, r.broadcast)
		if r.broadcast {
			lo, hi := min(r.from, r.to), max(r.from, r.to)
			for i := lo; i <= hi; i++ {
				if i != r.from && i != r.to {
					s.printf(`<circle cx="%d" cy="%d" r="4" class="arrow-arp"/>`+"\n", d.laneX(i), ay)
				}
			}
		}
		if r.lost || r.stub {
			s.cross(end+dir*8, ay)
		}
		at, anchor := (x1+x2)/2, "middle"
		if r.stub { // the label starts at the host, towards the arrow
			at, anchor = x1+dir*10, map[int]string{1: "start", -1: "end"}[dir]
		}
		s.text(at, ay-7, "label-"+r.kind, anchor, r.label)
		if r.detail != "" {
			s.text(at, ay+15, "mono", anchor, r.detail)
		}
		y += seqRowH
	}
	return s.String()
}
