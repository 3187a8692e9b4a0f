"""mkdocs hook: the notebook pages load nothing from the internet.

nbconvert, which mkdocs-jupyter renders the notebooks with, puts three loaders into a notebook's page:
- to a notebook that carries saved widget state (papermill saves it), a script that fetches the widget renderer
  (@jupyter-widgets/html-manager) from a CDN, and the state itself (the sliders' and images' values, megabytes of
  base64). Without that renderer a widget's output is an empty placeholder: a widget needs a kernel (`make lab`);
- a module that imports mermaid from a CDN should the page hold a mermaid diagram;
- MathJax, here with an empty address (mkdocs-jupyter's `custom_mathjax_url` is unset): it loads nothing.
All three are taken out. Any other script, style sheet, picture or media file from outside the site, on any page,
theme included, stops the build, naming the page.
"""

import re

from mkdocs.exceptions import PluginError

NBCONVERT_LOADERS = [
    re.compile(r"<script>\s*\(function\(\) \{\s*function addWidgetsRenderer\(\).*?</script>", re.S),
    re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', re.S),
    re.compile(r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async \(\) => \{\s*'
               r'const diagrams = document\.querySelectorAll\("\.jp-Mermaid.*?</script>', re.S),
    re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S),
]
REMOTE = re.compile(r"<(?:script|link|img|source|iframe|video|audio)\b[^>]*?\b(?:src|href)=[\"']((?:https?:)?//[^\"']*)"
                    r"|\bimport\(\s*[\"']((?:https?:)?//[^\"']*)", re.I)


def on_page_content(html, page, config, files):
    """A notebook page's body, without nbconvert's loaders."""
    if page.file.src_uri.endswith(".ipynb"):
        for loader in NBCONVERT_LOADERS:
            html = loader.sub("", html)
    return html


def on_post_page(output, page, config):
    """The whole page, theme included: anything it would fetch from outside the site stops the build."""
    remote = sorted({a or b for a, b in REMOTE.findall(output)})
    if remote:
        raise PluginError(f"{page.file.src_uri} loads from outside the site: {', '.join(remote)}")
    return output
