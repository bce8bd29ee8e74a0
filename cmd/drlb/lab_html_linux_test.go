package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
)

// updateDocs makes TestLabRun rewrite the README's drawing from its run:
// go test ./cmd/drlb -run 'TestLabRun$' -update
var updateDocs = flag.Bool("update", false, "rewrite "+walkSVG+" from the lab's page")

// walkSVG is the README's drawing of the walked request, made by drlb lab.
const walkSVG = "../../docs/lab-walk.svg"

var (
	svgRE  = regexp.MustCompile(`(?s)<svg .*?</svg>`)
	textRE = regexp.MustCompile(`(?s)<text [^>]*>(.*?)</text>`)
)

// docsDrawing writes the page's drawing number i (from 0) to walkSVG
// with -update; without, it checks that the committed drawing is one the
// lab makes: well-formed SVG naming the hosts and drlb's ARP answer.
func docsDrawing(t *testing.T, page string, i int) {
	t.Helper()
	if *updateDocs {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		svgs := svgRE.FindAllString(string(b), -1)
		if len(svgs) <= i {
			t.Fatalf("%s: no drawing %d", page, i)
		}
		if err := os.WriteFile(walkSVG, []byte(svgs[i]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", walkSVG)
	}
	b, err := os.ReadFile(walkSVG)
	if err != nil {
		t.Fatalf("the README's drawing: %v (make it: go test ./cmd/drlb -run 'TestLabRun$' -update)", err)
	}
	if err := xml.Unmarshal(b, new(struct{ XMLName xml.Name })); err != nil {
		t.Fatalf("%s: not well-formed: %v", walkSVG, err)
	}
	var texts []string
	for _, m := range textRE.FindAllStringSubmatch(string(b), -1) {
		texts = append(texts, html.UnescapeString(m[1]))
	}
	for _, want := range []string{"client", "router", "director", "rs1"} {
		if !slices.Contains(texts, want) {
			t.Errorf("%s does not name %s", walkSVG, want)
		}
	}
	if !slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, "drlb answers") }) {
		t.Errorf("%s lacks drlb's ARP answer", walkSVG)
	}
}

// pageDrawings returns the texts of each SVG drawing in a drlb lab page.
func pageDrawings(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var drawings [][]string
	for _, svg := range svgRE.FindAllString(string(b), -1) {
		var texts []string
		for _, m := range textRE.FindAllStringSubmatch(svg, -1) {
			texts = append(texts, html.UnescapeString(m[1]))
		}
		drawings = append(drawings, texts)
	}
	return drawings
}

// checkDrawings: the page has at least n drawings, and every drawing names
// each of hosts.
func checkDrawings(t *testing.T, path string, n int, hosts ...string) {
	t.Helper()
	drawings := pageDrawings(t, path)
	if len(drawings) < n {
		t.Fatalf("%s: %d drawings, want at least %d", path, len(drawings), n)
	}
	for i, texts := range drawings {
		for _, h := range hosts {
			if !slices.Contains(texts, h) {
				t.Errorf("%s: drawing %d does not name %s: %q", path, i+1, h, texts)
			}
		}
	}
}

// Colours the drawings use (lab/svg.go): a page whose screenshot has
// none of them did not render its drawings.
var (
	drawnBlue  = color.RGBA{0x1a, 0x56, 0xb0, 0xff} // requests, the director's box
	drawnGreen = color.RGBA{0x2e, 0x7d, 0x32, 0xff} // replies
)

// renderPage opens the page in headless Chromium, takes a screenshot and
// checks it is not blank and shows the drawings' colours. It returns the
// screenshot's path. Chromium runs in an empty network namespace of its
// own (the page needs no network, and its background services would
// otherwise reach out from the host's), with those services off.
func renderPage(t *testing.T, page string) string {
	t.Helper()
	chromium := testutil.NeedTool(t, "chromium", "chromium-browser")
	ns := testutil.NewNS(t)
	shot := strings.TrimSuffix(page, ".html") + ".png"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,2600", "--screenshot="+shot, "file://"+page)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := testutil.Do(ns, cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out.String())
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	colours, blue, green := pixelCensus(img)
	t.Logf("%s: %v, %d distinct colours, %d blue and %d green pixels of the drawings", shot, img.Bounds().Size(), colours, blue, green)
	if colours < 50 {
		t.Errorf("screenshot %s is blank: %d distinct colours", shot, colours)
	}
	if blue < 200 || green < 50 {
		t.Errorf("screenshot %s lacks the drawings: %d pixels of the request blue, %d of the reply green", shot, blue, green)
	}
	return shot
}

// pixelCensus counts an image's distinct colours and its pixels of
// exactly the drawings' blue and green.
func pixelCensus(img image.Image) (colours, blue, green int) {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			seen[c] = true
			switch c {
			case drawnBlue:
				blue++
			case drawnGreen:
				green++
			}
		}
	}
	return len(seen), blue, green
}

// TestPixelCensus: a blank image is told from a drawn one.
func TestPixelCensus(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	if colours, blue, _ := pixelCensus(img); colours != 1 || blue != 0 {
		t.Errorf("blank: %d colours, %d blue", colours, blue)
	}
	for x := 0; x < 40; x++ {
		img.Set(x, 20, drawnBlue)
	}
	if colours, blue, _ := pixelCensus(img); colours != 2 || blue != 40 {
		t.Errorf("a blue line: %d colours, %d blue", colours, blue)
	}
}

// absPath makes a test's file path absolute, for a file:// URL.
func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
