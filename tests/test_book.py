"`kdnotes book`: every page is there, every link works, and a real browser shows the tables, the figures and, offline, the formulas."
import html, json, re, shutil, subprocess, tempfile
from pathlib import Path
import pytest
from PIL import Image
from conftest import ROOT, kdnotes
from kdnotes.book import broken_links
from kdnotes.report import TABLES, markers

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']

@pytest.fixture(scope='module')
def book(tmp_path_factory):
    "The repository's book, built by the command into a temporary folder."
    out = tmp_path_factory.mktemp('book')/'book'
    r = kdnotes('book', '--out', out, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return out

def experiment_pages(book):
    return sorted(book.glob('results/*/*/*.html'))

def rows(text):
    "The rows of every HTML table in `text`, each a list of cell texts."
    cell = lambda c: html.unescape(re.sub(r'<[^>]+>', '', c)).strip()
    return [[cell(c) for c in re.findall(r'<t[dh][^>]*>(.*?)</t[dh]>', r, flags=re.S)] for r in re.findall(r'<tr[^>]*>(.*?)</tr>', text, flags=re.S)]

def readme_rows(table='studies'):
    "The rows of one of README's tables (header and data), as their cell texts."
    start, end = markers(table)
    block = re.search(f'{start}\n(.*?){end}', (ROOT/'README.md').read_text(), flags=re.S).group(1)
    lines = [l for l in block.splitlines() if l.startswith('|') and not re.fullmatch(r'[|\s:-]+', l)]
    unlink = lambda c: re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', c)      # a markdown link shows its text
    return [[unlink(c.strip()).replace('`', '').replace('*', '') for c in l.strip().strip('|').split('|')] for l in lines]

def test_every_page_is_there(book):
    chapters = [f'nbs/{p.stem}.html' for p in (ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')]
    runs = [p.relative_to(ROOT).with_suffix('.html').as_posix() for p in ROOT.glob('results/*/*/*.ipynb') if p.stem == p.parent.parent.name]
    assert runs, 'no executed experiment notebook in results/'
    for page in ['index.html', 'book.css', *chapters, *runs]: assert (book/page).is_file(), page
    index = (book/'index.html').read_text()
    for page in chapters + runs: assert f'href="{page}"' in index, f'the contents miss {page}'

def test_every_relative_link_resolves(book):
    assert broken_links(book) == []
    assert all('href="../book.css"' in p.read_text() for p in book.glob('nbs/*.html'))

def test_results_table_and_figures_are_in_the_html(book):
    assert readme_rows(), 'README has no results table'
    index = rows((book/'index.html').read_text())
    for table in TABLES:
        for row in readme_rows(table): assert row in index, f'{table} row missing from index.html: {row}'
    for page in experiment_pages(book): assert re.search(r'<img [^>]*src="data:image/png;base64,', page.read_text()), page

def chromium(*args, page:Path) -> str:
    "Run headless Chromium with a fresh profile on `page`; its standard output."
    exe = shutil.which('chromium') or '/usr/bin/chromium'
    if not Path(exe).is_file(): pytest.fail('chromium is not installed: the book is checked in a real browser; install it with `apt-get install -y chromium`')
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout

@pytest.mark.parametrize('which', ['front', 'experiment'])
def test_a_browser_shows_the_page(book, which, tmp_path):
    page = book/'index.html' if which == 'front' else experiment_pages(book)[0]
    shot = tmp_path/'shot.png'
    chromium(f'--screenshot={shot}', '--window-size=1280,2000', page=page)
    image = Image.open(shot).convert('RGB')
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200, f'{page.name}: the screenshot looks blank ({len(colours)} colours)'
    assert max(n for n, _ in colours) < 0.9*1280*2000, f'{page.name}: one colour covers 90% of the screenshot'
    dom = chromium('--dump-dom', page=page)
    assert '<nav class="toc">' in dom
    if which == 'front':
        shown = rows(dom)
        for table in TABLES:
            for row in readme_rows(table): assert row in shown, f'{table} row missing from the rendered front page: {row}'
    else: assert re.search(r'<img [^>]*src="data:image/png;base64,', dom), f'{page.name}: no figure after rendering'

OFFLINE = ['--proxy-server=127.0.0.1:9', '--host-resolver-rules=MAP * ~NOTFOUND']   # every request that leaves the machine fails
FORMULA = re.compile(r'\$[^$<]*\\[a-zA-Z]+[^$<]*\$')                                # inline TeX with a command, e.g. $\alpha T^2$

def test_formulas_render_without_network(book):
    "MathJax comes with the book: with the network cut off, every formula on a page full of them is typeset."
    page = max(book.glob('nbs/*.html'), key=lambda p: len(FORMULA.findall(p.read_text())))
    text = page.read_text()
    assert len(FORMULA.findall(text)) >= 5, f'{page.name}: expected a page with formulas'
    assert not re.search(r'<script[^>]*src="(https?:)?//', text), f'{page.name}: loads a script from the network'
    dom = chromium(*OFFLINE, '--virtual-time-budget=30000', '--dump-dom', page=page)
    scripts = len(re.findall(r'<script type="math/tex', dom))       # MathJax replaces each formula by a script and its output
    typeset = len(re.findall(r'<span class="MathJax" id="MathJax-Element-\d+-Frame"', dom))
    assert scripts >= 5 and typeset == scripts, f'{page.name}: {typeset} of {scripts} formulas typeset offline'
    assert 'class="MathJax_Error"' not in dom and 'Math Processing Error' not in dom, f'{page.name}: MathJax reported an error'
    assert 'STIXMathJax_' in dom, f"{page.name}: the formulas are not drawn with the book's STIX web fonts"


OVERFLOW_PROBE = """<script>window.addEventListener('load', () => {
  const main = document.querySelector('main'), wide = [];
  document.querySelectorAll('main table').forEach((t, i) => { if (t.scrollWidth > t.clientWidth + 1) wide.push(i); });
  const report = {main: [main.scrollWidth, main.clientWidth], page: [document.documentElement.scrollWidth, window.innerWidth],
                  findings: document.querySelectorAll('#Findings ~ ol li, h2#Findings + p ~ ol li').length,
                  items: document.querySelectorAll('.results-table ol > li').length,
                  studies: [...document.querySelectorAll('h3')].filter(h => h.textContent.startsWith('Study ')).length, wide: wide};
  const pre = document.createElement('pre'); pre.id = 'overflow-report'; pre.textContent = JSON.stringify(report); document.body.appendChild(pre);
});</script>"""

def test_front_page_at_1400_by_900_has_findings_and_study_tables_without_sideways_scrolling(book):
    "At 1400×900 the front page shows the numbered Findings and one table per study, and nothing in the main column scrolls sideways."
    probe = book/'index-probe.html'
    probe.write_text((book/'index.html').read_text().replace('</body>', OVERFLOW_PROBE + '</body>'))
    try: dom = chromium('--window-size=1400,900', '--virtual-time-budget=10000', '--dump-dom', page=probe)
    finally: probe.unlink()
    report = json.loads(html.unescape(re.search(r'<pre id="overflow-report">(.*?)</pre>', dom, flags=re.S).group(1)))
    assert report['items'] >= 20, f'the Findings list has {report["items"]} items'
    assert report['studies'] == 5, f'{report["studies"]} per-study tables'
    assert report['main'][0] <= report['main'][1] + 1, f'the main column overflows: scroll width {report["main"]}'
    assert report['page'][0] <= report['page'][1] + 1, f'the page scrolls sideways: {report["page"]}'
    assert not report['wide'], f'tables that scroll sideways (their index in the page): {report["wide"]}'
