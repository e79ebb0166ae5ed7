// The .col header against gProfiler's: test/data/gprofiler_header.json is
// the header gProfiler 1.57.1 writes (`gprofiler -o DIR --no-flamegraph`
// on an AWS instance, with an --external-metadata file), its keys, order
// and value types taken from its source: merge.py's
// _make_profile_metadata(), metadata_collector.py's get_static_metadata()
// and get_current_metadata(), system_metadata.py's SystemInfo, main.py's
// sampling keys and granulate-utils' cloud.py. Rendered from the same
// facts, ours must be equal key for key, in order, but for the differences
// docs/upload.md lists: no "python_version", our own "run_arguments"
// (flag names), "start_time" and "end_time" added at the end. The
// "containers" and "application_metadata" keys belong to the enrichment
// and are compared by type only.

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include <rapidjson/document.h>

#include "format/col.hpp"
#include "format/time.hpp"

using namespace gpa;

namespace {

rapidjson::Document golden() {
  std::ifstream in(std::string{GPA_TEST_DATA_DIR} + "/gprofiler_header.json");
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(ss.str().c_str());
  BOOST_REQUIRE(!doc.HasParseError() && doc.IsObject());
  return doc;
}

/// The header line rendered from `h`, parsed.
rapidjson::Document rendered(const format::col_header& h) {
  auto line = format::render_header(h);
  BOOST_REQUIRE(line.rfind("# ", 0) == 0);
  BOOST_REQUIRE(line.back() == '\n');
  rapidjson::Document doc;
  doc.Parse(line.c_str() + 2, line.size() - 3);
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError() && doc.IsObject(), line);
  return doc;
}

std::vector<std::string> keys_of(const rapidjson::Value& obj,
                                 const std::set<std::string>& except = {}) {
  std::vector<std::string> keys;
  for (auto& m : obj.GetObject())
    if (!except.count(m.name.GetString()))
      keys.emplace_back(m.name.GetString());
  return keys;
}

int64_t ms_of(const char* iso) {
  auto ms = format::parse_iso8601(iso);
  BOOST_REQUIRE(ms);
  return *ms;
}

/// The facts of the golden header, as the agent would have them.
format::col_header golden_facts() {
  format::col_header h;
  auto& host = h.host;
  host.hostname = "ip-10-0-0-12";
  host.kernel_release = "6.1.0-21-cloud-amd64";
  host.kernel_version = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03)";
  host.system_name = "Linux";
  host.hardware_type = "x86_64";
  host.processors = 2;
  host.cpu_model_name = "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz";
  host.cpu_arch_codename = format::cpu_arch_codename(6, 85);
  host.cpu_flags
      = "fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm";
  host.memory_capacity_mb = 7841;
  host.hypervisor = "KVMKVMKVM";
  host.os_name = "Debian GNU/Linux";
  host.os_release = "12";
  host.os_codename = "bookworm";
  host.libc_type = "glibc";
  host.libc_version = "2.36-9+deb12u7";
  host.mac_address = "02:5B:8C:11:22:33";
  host.private_ip = "10.0.0.12";
  host.spawn_uptime_s = 1234.567891;
  h.agent_version = "1.57.1";
  // gProfiler drops the fraction of a second.
  h.spawn_ms = ms_of("2024-05-01T07:53:20") + 789;
  h.pid = 1234;
  h.run_arguments_json = R"({"profiling_duration": 60})";
  h.cloud.provider = "aws";
  h.cloud.info_json
      = R"({"region":"eu-west-1","zone":"eu-west-1b","instance_type":"m5.large",)"
        R"("life_cycle":"spot","account_id":"123456789012",)"
        R"("image_id":"ami-0abcdef1234567890",)"
        R"("instance_id":"i-0123456789abcdef0"})";
  h.external_metadata_json = R"({"team":"perf"})";
  h.sampling_frequency = 11;
  h.start_ms = ms_of("2024-05-01T10:00:00.456");
  h.end_ms = ms_of("2024-05-01T10:01:00.456");
  h.cpu_avg = 12.5;
  h.mem_avg = 40.25;
  return h;
}

} // namespace

BOOST_AUTO_TEST_SUITE(col_header)

BOOST_AUTO_TEST_CASE(equal_to_gprofilers_key_for_key) {
  auto want = golden();
  auto got = rendered(golden_facts());
  // Top level: the same keys in the same order, ours with start_time and
  // end_time at the end.
  BOOST_CHECK(keys_of(got, {"start_time", "end_time"}) == keys_of(want));
  std::set<std::string> enrichment{"containers", "container_names_enabled",
                                   "application_metadata",
                                   "application_metadata_enabled"};
  for (auto& m : want.GetObject()) {
    std::string key = m.name.GetString();
    BOOST_REQUIRE_MESSAGE(got.HasMember(key.c_str()), key);
    auto& ours = got[key.c_str()];
    if (enrichment.count(key)) {
      BOOST_CHECK_MESSAGE(ours.GetType() == m.value.GetType()
                              || (ours.IsBool() && m.value.IsBool()),
                          key);
    } else if (key != "metadata") {
      BOOST_CHECK_MESSAGE(ours == m.value, key);
    }
  }
  BOOST_CHECK_EQUAL(got["start_time"].GetString(), "2024-05-01T10:00:00.456Z");
  BOOST_CHECK_EQUAL(got["end_time"].GetString(), "2024-05-01T10:01:00.456Z");
  // metadata: every key but python_version, in order, equal but for
  // run_arguments (ours are our flags).
  auto& wm = want["metadata"];
  auto& gm = got["metadata"];
  BOOST_CHECK(keys_of(gm) == keys_of(wm, {"python_version"}));
  for (auto& m : wm.GetObject()) {
    std::string key = m.name.GetString();
    if (key == "python_version")
      continue;
    BOOST_REQUIRE_MESSAGE(gm.HasMember(key.c_str()), key);
    auto& ours = gm[key.c_str()];
    if (key == "run_arguments")
      BOOST_CHECK(ours.IsObject());
    else
      BOOST_CHECK_MESSAGE(ours == m.value, "metadata." << key);
  }
  // The types that differed before: times as text, uptime a fraction.
  BOOST_CHECK(gm["spawn_time"].IsString());
  BOOST_CHECK(gm["spawn_uptime_ms"].IsDouble());
  BOOST_CHECK(gm["processors"].IsInt());
  BOOST_CHECK(gm["memory_capacity_mb"].IsInt());
}

BOOST_AUTO_TEST_CASE(unknown_cloud_has_no_cloud_info) {
  auto h = golden_facts();
  h.cloud = {};
  auto got = rendered(h);
  auto& md = got["metadata"];
  BOOST_CHECK_EQUAL(md["cloud_provider"].GetString(), "unknown");
  BOOST_CHECK(!md.HasMember("cloud_info"));
  // Everything else is still there.
  BOOST_CHECK_EQUAL(keys_of(md).size(),
                    keys_of(golden()["metadata"]).size() - 2);
}

BOOST_AUTO_TEST_CASE(metadata_collection_disabled) {
  // gProfiler: {"hostname": ...} then the profiling mode and sampling keys.
  auto h = golden_facts();
  h.metadata_enabled = false;
  h.sampling_frequency = 99;
  auto got = rendered(h);
  auto& md = got["metadata"];
  BOOST_CHECK(keys_of(md)
              == (std::vector<std::string>{"hostname", "profiling_mode",
                                           "sampling_event", "sampling_mode",
                                           "sampling_frequency"}));
  BOOST_CHECK_EQUAL(md["hostname"].GetString(), "ip-10-0-0-12");
  BOOST_CHECK_EQUAL(md["sampling_frequency"].GetInt(), 99);
  BOOST_CHECK_EQUAL(got["sampling_frequency"].GetInt(), 99);
  // The rest of the header is unchanged.
  BOOST_CHECK(keys_of(got) == keys_of(rendered(golden_facts())));
}

BOOST_AUTO_TEST_CASE(unknown_metrics_are_null) {
  auto h = golden_facts();
  h.cpu_avg = -1;
  h.mem_avg = -1;
  auto got = rendered(h);
  BOOST_CHECK(got["metrics"]["cpu_avg"].IsNull());
  BOOST_CHECK(got["metrics"]["mem_avg"].IsNull());
}

BOOST_AUTO_TEST_CASE(odd_facts_stay_valid_json) {
  auto h = golden_facts();
  h.cloud.info_json = "not json";
  h.external_metadata_json = "[1, 2]";
  h.host.hostname = "";
  auto got = rendered(h);
  auto& md = got["metadata"];
  BOOST_CHECK(md["cloud_info"].IsObject());
  BOOST_CHECK(md["external_metadata"].IsObject());
  BOOST_CHECK_EQUAL(md["external_metadata"].MemberCount(), 0u);
  BOOST_CHECK_EQUAL(md["hostname"].GetString(), "unknown");
}

BOOST_AUTO_TEST_CASE(cpu_arch_codenames) {
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(6, 106), "ICX");
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(6, 143), "SPR");
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(6, 207), "EMR");
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(6, 173), "GNR");
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(6, 85), "UNKNOWN");
  BOOST_CHECK_EQUAL(format::cpu_arch_codename(25, 106), "UNKNOWN"); // AMD
}

BOOST_AUTO_TEST_SUITE_END()
