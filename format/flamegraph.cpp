#include "format/flamegraph.hpp"

#include "format/flamegraph_assets.hpp"

namespace gpa::format {

namespace {

// The page around the data. Every element the viewer fills has an id; the
// viewer sets their text with textContent only.
constexpr std::string_view page_body = R"html(<body>
<header id="gpa-header">
<h1>Flame graph <span id="gpa-host"></span></h1>
<dl id="gpa-facts"></dl>
<span id="gpa-total" class="gpa-hidden-value"></span>
<details id="gpa-errors" hidden><summary></summary><ul></ul></details>
<div id="gpa-notes"></div>
<div class="gpa-controls">
<input id="gpa-search" type="search" placeholder="Search frames ( / )" autocomplete="off" spellcheck="false">
<button id="gpa-clear" type="button">Clear</button>
<button id="gpa-reset" type="button" disabled>Reset zoom</button>
<label id="gpa-comm-label">Process <select id="gpa-comm"></select></label>
<label id="gpa-container-label">Container <select id="gpa-container"></select></label>
<span id="gpa-shown"></span>
<span id="gpa-zoomed"></span>
<span id="gpa-matches" class="gpa-hidden-value"></span>
</div>
<div id="gpa-legend"></div>
<div id="gpa-details"></div>
</header>
<main id="gpa-main"><div id="gpa-chart"></div></main>
)html";

} // namespace

std::string render_flamegraph(const flame_tree& tree) {
  auto json = tree.to_json();
  std::string out;
  out.reserve(json.size() + assets::viewer_script.size()
              + assets::viewer_style.size() + 4096);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
         "charset=\"utf-8\">\n";
  // Nothing may be fetched: no connections, no frames, no images but data:,
  // and only the viewer's own script runs (the data block is JSON, not code).
  out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
         "'none'; script-src '";
  out += assets::viewer_script_hash;
  out += "'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
         "form-action 'none'\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, "
         "initial-scale=1\">\n";
  out += "<meta name=\"generator\" content=\"gprofiler-agent\">\n";
  out += "<link rel=\"icon\" href=\"data:,\">\n<title>Flame graph";
  for (auto& [key, value] : tree.meta()) {
    if (key == "hostname") {
      out += ": ";
      append_html_escaped(out, value);
    }
  }
  out += "</title>\n<!-- viewer: ";
  out += assets::viewer_libraries;
  out += " -->\n<style>\n";
  out += assets::viewer_style;
  out += "</style>\n</head>\n";
  out += page_body;
  out += "<script type=\"application/json\" id=\"gpa-profile\">";
  out += json;
  out += "</script>\n<script>";
  out += assets::viewer_script;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

std::string render_flamegraph(std::string_view col_text,
                              const flamegraph_options& opts) {
  flame_tree tree{col_text, opts.tree};
  return render_flamegraph(tree);
}

} // namespace gpa::format
