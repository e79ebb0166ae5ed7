// Unit tests of the flame-graph page's HTML: self-contained, a CSP that
// forbids the network, the data block cannot be escaped by hostile names, and
// the embedded viewer is the one built from format/viewer.
// (The page's behaviour in a browser: test/browser/flamegraph.test.js.)

#include <boost/test/unit_test.hpp>

#include <regex>
#include <string>

#include <rapidjson/document.h>

#include "format/flamegraph.hpp"
#include "format/flamegraph_assets.hpp"

using namespace gpa::format;

namespace {

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

// The text between `open` and the next "</script>".
std::string script_body(const std::string& page, const std::string& open) {
  auto at = page.find(open);
  BOOST_REQUIRE(at != std::string::npos);
  at += open.size();
  auto end = page.find("</script>", at);
  BOOST_REQUIRE(end != std::string::npos);
  return page.substr(at, end - at);
}

const std::string hostile_col
    = "# {\"metadata\": {\"hostname\": \"<img src=x onerror=alert(1)>&\"}}\n"
      "0;;evil</script><b>;</script><script>alert(1)</script> 5\n"
      "0;<c>;java;main 7\n";

} // namespace

BOOST_AUTO_TEST_SUITE(flamegraph_page)

BOOST_AUTO_TEST_CASE(the_page_holds_exactly_two_scripts) {
  auto page = render_flamegraph(hostile_col);
  BOOST_CHECK_EQUAL(page.rfind("<!DOCTYPE html>", 0), 0u);
  // One data block and one viewer, whatever the profile's names hold.
  BOOST_CHECK_EQUAL(count(page, "<script"), 2u);
  BOOST_CHECK_EQUAL(count(page, "</script"), 2u);
  BOOST_CHECK_EQUAL(count(page, "<b>"), 0u);
  BOOST_CHECK_EQUAL(count(page, "<img"), 0u);
  BOOST_CHECK(page.find("<title>Flame graph: &lt;img src=x "
                        "onerror=alert(1)&gt;&amp;</title>")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_data_block_is_the_profile) {
  auto page = render_flamegraph(hostile_col);
  auto json = script_body(
      page, "<script type=\"application/json\" id=\"gpa-profile\">");
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_CHECK_EQUAL(doc["total"].GetUint64(), 12u);
  BOOST_CHECK_EQUAL(std::string{doc["meta"]["hostname"].GetString()},
                    "<img src=x onerror=alert(1)>&");
  BOOST_CHECK_EQUAL(doc["groups"].Size(), 2u);
}

BOOST_AUTO_TEST_CASE(the_viewer_is_embedded_and_allowed_by_hash_only) {
  auto page = render_flamegraph("comm;f 1\n");
  BOOST_CHECK_EQUAL(script_body(page, "</script>\n<script>"),
                    std::string{assets::viewer_script});
  BOOST_CHECK(page.find(assets::viewer_style) != std::string::npos);
  // d3-flame-graph and our glue are both in the script.
  BOOST_CHECK(assets::viewer_script.find("d3-flame-graph")
              != std::string::npos);
  BOOST_CHECK(assets::viewer_script.find("gpa-profile") != std::string::npos);
  BOOST_CHECK(assets::viewer_script_hash.rfind("sha256-", 0) == 0);
  BOOST_CHECK_EQUAL(assets::viewer_script_hash.size(), 7u + 44u);
  std::smatch m;
  std::regex csp{"<meta http-equiv=\"Content-Security-Policy\" "
                 "content=\"([^\"]*)\">"};
  BOOST_REQUIRE(std::regex_search(page, m, csp));
  auto policy = m[1].str();
  BOOST_CHECK(policy.find("default-src 'none'") != std::string::npos);
  BOOST_CHECK(policy.find("script-src '"
                          + std::string{assets::viewer_script_hash} + "';")
              != std::string::npos);
  BOOST_CHECK(policy.find("unsafe-eval") == std::string::npos);
  BOOST_CHECK(policy.find("connect-src") == std::string::npos); // => 'none'
  // The policy comes before any script.
  BOOST_CHECK_LT(page.find("Content-Security-Policy"), page.find("<script"));
}

BOOST_AUTO_TEST_CASE(nothing_points_outside_the_page) {
  auto page = render_flamegraph(hostile_col);
  // No attribute loads anything but the empty data: icon.
  std::regex attr{"\\b(src|href|action|srcset)\\s*=\\s*\"([^\"]*)\""};
  for (std::sregex_iterator it{page.begin(), page.end(), attr}, end; it != end;
       ++it)
    BOOST_CHECK_MESSAGE((*it)[2] == "data:,", "loads " << (*it)[0]);
  // The only URLs are the XML namespace names d3 needs to create SVG
  // elements; they are identifiers, never fetched.
  std::regex url{"(https?:)?//[A-Za-z0-9.-]+\\.[a-z]{2,}[^\"' )]*"};
  size_t urls = 0;
  for (std::sregex_iterator it{page.begin(), page.end(), url}, end; it != end;
       ++it) {
    ++urls;
    BOOST_CHECK_MESSAGE((*it)[0].str().rfind("http://www.w3.org/", 0) == 0,
                        "URL in the page: " << (*it)[0]);
  }
  BOOST_CHECK_GT(urls, 0u); // the check above did look at something
}

BOOST_AUTO_TEST_CASE(an_empty_profile_still_renders) {
  auto page = render_flamegraph("");
  BOOST_CHECK(page.find("\"total\":0") != std::string::npos);
  BOOST_CHECK_EQUAL(count(page, "<script"), 2u);
}

BOOST_AUTO_TEST_SUITE_END()
