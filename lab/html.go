package lab

import (
	"html/template"
	"io"
	"time"
)

// page is the HTML page of one run (--html): its drawings in the order
// the run made them, then the check table. It is one self-contained file:
// inline SVG and CSS, no script, nothing fetched.
type page struct {
	title   string
	figures []figure
}

// figure is one section of the page: a heading, paragraphs, a drawing.
type figure struct {
	heading string
	text    []string
	svg     string
}

// add appends a section; svg is a drawing made by this package.
func (p *page) add(heading, svg string, text ...string) {
	p.figures = append(p.figures, figure{heading: heading, text: text, svg: svg})
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1240px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; }
h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ccd; padding-bottom: 4px; }
p { line-height: 1.45; max-width: 900px; }
figure { margin: 12px 0; overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 5px 12px; border-bottom: 1px solid #dde; vertical-align: top; }
td.pass { color: #1b5e20; font-weight: bold; }
td.fail { color: #b71c1c; font-weight: bold; }
.foot { color: #666; font-size: 13px; margin-top: 28px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Figures}}<h2>{{.Heading}}</h2>
{{range .Text}}<p>{{.}}</p>
{{end}}{{if .SVG}}<figure>{{.SVG}}</figure>
{{end}}{{end}}<h2>Checks</h2>
<table>
<tr><th>Result</th><th>Check</th><th>Found</th></tr>
{{range .Checks}}<tr><td class="{{if .OK}}pass{{else}}fail{{end}}">{{if .OK}}PASS{{else}}FAIL{{end}}</td><td>{{.Name}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<p class="foot">{{.Footer}}</p>
</body>
</html>
`))

// render writes the page with the run's checks and a footer line.
func (p *page) render(w io.Writer, cs checks, footer string) error {
	type fig struct {
		Heading string
		Text    []string
		SVG     template.HTML
	}
	type row struct {
		OK           bool
		Name, Detail string
	}
	data := struct {
		Title   string
		Figures []fig
		Checks  []row
		Footer  string
	}{Title: p.title, Footer: footer}
	for _, f := range p.figures {
		// The drawings are built by this package, every string in them
		// escaped (svgDoc.text): they are trusted markup.
		data.Figures = append(data.Figures, fig{Heading: f.heading, Text: f.text, SVG: template.HTML(f.svg)})
	}
	for _, c := range cs {
		data.Checks = append(data.Checks, row{OK: c.ok, Name: c.name, Detail: c.detail})
	}
	return pageTemplate.Execute(w, data)
}

// pageFooter says where a page came from.
func pageFooter(at time.Time, dir string) string {
	return "Made by drlb lab on " + at.Format("2006-01-02 15:04:05 MST") + " from packets captured in the lab; pcaps in " + dir + "."
}
