// Cloud metadata and the external metadata file: the DMI rules that decide
// which cloud, if any, is asked (fixtures of real DMI data in
// test/data/dmi), gProfiler's fields of each cloud, and the external
// metadata file's format and checks (unit); then the lookup against a
// stand-in metadata service on 127.0.0.1 (real): each cloud's fields, no
// request at all without a DMI match, and a service that never answers
// costs nothing.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/cloud_metadata.hpp"
#include "runtime/external_metadata.hpp"
#include "runtime/process_env.hpp"

extern char** environ;

using namespace gpa;
using namespace std::chrono_literals;

namespace {

const std::string dmi_root = std::string{GPA_TEST_DATA_DIR} + "/dmi/";

std::string cloud_of(const std::string& fixture) {
  return rt::cloud_of_dmi(rt::read_dmi(dmi_root + fixture));
}

/// The cloud_info object's members, parsed.
rapidjson::Document info_of(const format::cloud_metadata& m) {
  rapidjson::Document doc;
  doc.Parse(m.info_json.c_str());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError() && doc.IsObject(), m.info_json);
  return doc;
}

std::vector<std::string> keys_of(const rapidjson::Value& obj) {
  std::vector<std::string> keys;
  for (auto& m : obj.GetObject())
    keys.emplace_back(m.name.GetString());
  return keys;
}

std::string str(const rapidjson::Value& obj, const char* key) {
  BOOST_REQUIRE_MESSAGE(obj.HasMember(key) && obj[key].IsString(), key);
  return obj[key].GetString();
}

const char* aws_identity = R"({"accountId": "123456789012",
  "availabilityZone": "eu-west-1b", "imageId": "ami-1", "instanceId": "i-1",
  "instanceType": "m5.large", "region": "eu-west-1", "version": "x"})";

const char* gcp_instance = R"({"id": 4520031799277581759, "name": "n1",
  "zone": "projects/1/zones/us-central1-a",
  "machineType": "projects/1/machineTypes/n2-standard-4",
  "image": "projects/cos-cloud/global/images/cos-1", "preempted": "FALSE",
  "scheduling": {"preemptible": "TRUE"}})";

const char* azure_compute = R"({"location": "westeurope", "name": "vm1",
  "resourceGroupName": "rg", "resourceId": "/subscriptions/s/x",
  "subscriptionId": "s", "vmId": "v-1", "vmSize": "Standard_D2s_v3",
  "zone": "2", "storageProfile": {"imageReference": {"id": "",
  "offer": "jammy", "publisher": "canonical", "sku": "22_04",
  "version": "latest"}}})";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream{path} << text;
}

/// Sets the modification time of `path` to `age` ago.
void age_file(const std::string& path, std::chrono::seconds age) {
  timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= static_cast<time_t>(age.count());
  times[1] = times[0];
  BOOST_REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

/// test/support/cloud_metadata_server.py, running on 127.0.0.1 for one
/// test; killed and reaped at the end (and it exits by itself when our end
/// of its stdin closes).
class metadata_stand_in {
public:
  explicit metadata_stand_in(bool hang = false) {
    int in[2];
    int out[2];
    BOOST_REQUIRE(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<std::string> argv{"python3", GPA_CLOUD_SERVER_PY};
    if (hang)
      argv.emplace_back("--hang");
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    auto rc
        = ::posix_spawnp(&pid_, "python3", &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    BOOST_REQUIRE_EQUAL(rc, 0);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n')
      line += c;
    ::close(out[0]);
    std::istringstream is{line};
    std::string ready;
    is >> ready >> port_;
    BOOST_REQUIRE_MESSAGE(ready == "READY" && port_ > 0, line);
    control_ = rt::make_curl_http_client(rt::cloud_http_options());
  }

  ~metadata_stand_in() {
    ::close(stdin_);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR)
      ;
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  /// The metadata requests received so far.
  rapidjson::Document requests() {
    rt::http_request req;
    req.url = url() + "/_requests";
    req.timeout = 10s;
    auto resp = control_->send(req);
    BOOST_REQUIRE(resp && resp->status == 200);
    rapidjson::Document doc;
    doc.Parse(resp->body.c_str());
    BOOST_REQUIRE(doc.IsArray());
    return doc;
  }

  /// Checks that every request was made as the real service wants it.
  void check_requests_valid() {
    auto reqs = requests();
    for (auto& r : reqs.GetArray())
      BOOST_CHECK_MESSAGE(
          r["error"].IsNull(),
          r["path"].GetString()
              << ": " << (r["error"].IsString() ? r["error"].GetString() : ""));
  }

private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
  std::unique_ptr<rt::http_client> control_;
};

/// Sources pointing every service at `url`, with DMI data `fixture`.
rt::cloud_sources sources(const std::string& fixture, const std::string& url) {
  rt::cloud_sources src;
  src.dmi_dir = dmi_root + fixture;
  src.aws_url = url;
  src.gcp_url = url + "/";
  src.azure_url = url;
  src.timeout = 5s;
  return src;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cloud_metadata)

BOOST_AUTO_TEST_CASE(dmi_names_the_cloud) {
  BOOST_CHECK_EQUAL(cloud_of("aws-nitro"), "aws");
  BOOST_CHECK_EQUAL(cloud_of("aws-xen"), "aws");
  BOOST_CHECK_EQUAL(cloud_of("gcp"), "gcp");
  BOOST_CHECK_EQUAL(cloud_of("azure"), "azure");
  // Hyper-V on premises has Azure's vendor and product, not its asset tag.
  BOOST_CHECK_EQUAL(cloud_of("hyperv"), "");
  BOOST_CHECK_EQUAL(cloud_of("kvm"), "");
  BOOST_CHECK_EQUAL(cloud_of("dell"), "");
  // No DMI data at all (these machines, containers without /sys).
  BOOST_CHECK_EQUAL(cloud_of("no-such-dir"), "");
  rt::dmi_info gce_serial;
  gce_serial.product_serial = "GoogleCloud-5E6E6B1A0B5A4C7F";
  BOOST_CHECK_EQUAL(rt::cloud_of_dmi(gce_serial), "gcp");
  rt::dmi_info almost;
  almost.sys_vendor = "Amazon EC2 lookalike";
  almost.chassis_asset_tag = "7783-7084-3265-9085-8269-3286-7";
  BOOST_CHECK_EQUAL(rt::cloud_of_dmi(almost), "");
}

BOOST_AUTO_TEST_CASE(dmi_files_are_read_bounded_and_trimmed) {
  rt::private_temp_dir temp{"/tmp"};
  auto dir = temp.path();
  write_file(dir + "/sys_vendor", "  Amazon EC2 \n");
  write_file(dir + "/product_name", std::string(100000, 'x'));
  BOOST_REQUIRE(::mkfifo((dir + "/bios_vendor").c_str(), 0600) == 0);
  BOOST_REQUIRE(::mkdir((dir + "/chassis_asset_tag").c_str(), 0700) == 0);
  auto start = std::chrono::steady_clock::now();
  auto d = rt::read_dmi(dir);
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 1s); // FIFO: no wait
  BOOST_CHECK_EQUAL(d.sys_vendor, "Amazon EC2");
  BOOST_CHECK_EQUAL(d.product_name.size(), 256u);
  BOOST_CHECK_EQUAL(d.bios_vendor, "");
  BOOST_CHECK_EQUAL(d.chassis_asset_tag, "");
  BOOST_CHECK_EQUAL(rt::cloud_of_dmi(d), "aws");
}

BOOST_AUTO_TEST_CASE(aws_fields_as_gprofiler_names_them) {
  format::cloud_metadata m;
  BOOST_REQUIRE_EQUAL(rt::parse_aws_metadata(aws_identity, "spot", m), "");
  BOOST_CHECK_EQUAL(m.provider, "aws");
  // gProfiler's AwsInstanceMetadata, in order, without "provider".
  BOOST_CHECK_EQUAL(m.info_json,
                    R"({"region":"eu-west-1","zone":"eu-west-1b",)"
                    R"("instance_type":"m5.large","life_cycle":"spot",)"
                    R"("account_id":"123456789012","image_id":"ami-1",)"
                    R"("instance_id":"i-1"})");
  format::cloud_metadata bad;
  BOOST_CHECK_EQUAL(
      rt::parse_aws_metadata(R"({"region": "r"})", "spot", bad),
      "the instance identity document has no \"availabilityZone\"");
  BOOST_CHECK_EQUAL(bad.provider, "unknown");
  BOOST_CHECK(
      rt::parse_aws_metadata("<html>", "spot", bad).find("not valid JSON")
      != std::string::npos);
  BOOST_CHECK(rt::parse_aws_metadata(std::string(100000, '['), "", bad)
                  .find("nested deeper")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(aws_container_fields_as_gprofiler_names_them) {
  format::cloud_metadata m;
  BOOST_REQUIRE_EQUAL(
      rt::parse_aws_container_metadata(R"({"ContainerARN": "arn:x"})",
                                       "AWS_ECS_FARGATE", "us-west-2", m),
      "");
  BOOST_CHECK_EQUAL(m.provider, "aws");
  BOOST_CHECK_EQUAL(m.info_json, R"({"execution_env":"AWS_ECS_FARGATE",)"
                                 R"("region":"us-west-2",)"
                                 R"("container_arn":"arn:x"})");
  format::cloud_metadata bad;
  BOOST_CHECK_EQUAL(rt::parse_aws_container_metadata(
                        R"({"ContainerARN": "a"})", "AWS_ECS_FARGATE", "", bad),
                    "AWS_REGION is not set");
}

BOOST_AUTO_TEST_CASE(gcp_fields_as_gprofiler_names_them) {
  format::cloud_metadata m;
  BOOST_REQUIRE_EQUAL(rt::parse_gcp_metadata(gcp_instance, m), "");
  BOOST_CHECK_EQUAL(m.provider, "gcp");
  BOOST_CHECK_EQUAL(
      m.info_json, R"({"zone":"us-central1-a","instance_type":"n2-standard-4",)"
                   R"("preempted":false,"preemptible":true,)"
                   R"("instance_id":"4520031799277581759",)"
                   R"("image_id":"projects/cos-cloud/global/images/cos-1",)"
                   R"("name":"n1"})");
  format::cloud_metadata bad;
  BOOST_CHECK_EQUAL(rt::parse_gcp_metadata(
                        R"({"zone": "z", "machineType": "t", "scheduling": {},
                            "preempted": "FALSE", "id": 1, "image": "i",
                            "name": "n"})",
                        bad),
                    "its scheduling has no \"preemptible\"");
}

BOOST_AUTO_TEST_CASE(azure_fields_as_gprofiler_names_them) {
  format::cloud_metadata m;
  BOOST_REQUIRE_EQUAL(rt::parse_azure_metadata(azure_compute, m), "");
  BOOST_CHECK_EQUAL(m.provider, "azure");
  BOOST_CHECK_EQUAL(
      m.info_json,
      R"({"instance_type":"Standard_D2s_v3","zone":"2","region":"westeurope",)"
      R"("subscription_id":"s","resource_group_name":"rg",)"
      R"("resource_id":"/subscriptions/s/x","instance_id":"v-1","name":"vm1",)"
      R"("image_info":{"image_id":"","image_offer":"jammy",)"
      R"("image_publisher":"canonical","image_sku":"22_04",)"
      R"("image_version":"latest"}})");
  // Without an image reference: image_info null.
  rapidjson::Document doc;
  doc.Parse(azure_compute);
  doc.RemoveMember("storageProfile");
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  format::cloud_metadata plain;
  BOOST_REQUIRE_EQUAL(rt::parse_azure_metadata(buf.GetString(), plain), "");
  auto info = info_of(plain);
  BOOST_CHECK(info["image_info"].IsNull());
}

BOOST_AUTO_TEST_CASE(holder_says_unknown_until_set) {
  rt::cloud_metadata_holder h;
  BOOST_CHECK_EQUAL(h.get().provider, "unknown");
  BOOST_CHECK_EQUAL(h.get().info_json, "");
  format::cloud_metadata m;
  m.provider = "gcp";
  m.info_json = "{}";
  h.set(m);
  BOOST_CHECK_EQUAL(h.get().provider, "gcp");
}

BOOST_AUTO_TEST_CASE(external_metadata_format) {
  rt::external_metadata m;
  BOOST_REQUIRE_EQUAL(rt::parse_external_metadata(
                          R"({"static": {"value1": 555, "value2": "string"},
              "application": {"12": {"value3": "1234", "value4": false},
                              " +7 ": {}}})",
                          m),
                      "");
  BOOST_CHECK_EQUAL(m.static_json, R"({"value1":555,"value2":"string"})");
  BOOST_REQUIRE_EQUAL(m.application.size(), 2u);
  BOOST_CHECK_EQUAL(m.application.at(12),
                    R"({"value3":"1234","value4":false})");
  BOOST_CHECK_EQUAL(m.application.at(7), "{}");
  rt::external_metadata empty;
  BOOST_REQUIRE_EQUAL(rt::parse_external_metadata("{}", empty), "");
  BOOST_CHECK_EQUAL(empty.static_json, "{}");
  BOOST_CHECK(empty.application.empty());
  for (auto [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"[]", "not a JSON object"},
           {"{", "not valid JSON"},
           {R"({"static": [1]})", "\"static\" is not a JSON object"},
           {R"({"application": {"web": {}}})", "key \"web\" is not a PID"},
           {R"({"application": {"12": 5}})", "of PID 12 is not a JSON object"},
           {R"({"application": []})", "\"application\" is not a JSON object"},
           {std::string(10000, '[') + std::string(10000, ']'),
            "nested deeper"}}) {
    rt::external_metadata out;
    out.static_json = "kept";
    auto got = rt::parse_external_metadata(text, out);
    BOOST_CHECK_MESSAGE(got.find(why) != std::string::npos,
                        text.substr(0, 40) << " -> " << got);
    BOOST_CHECK_EQUAL(out.static_json, "kept"); // untouched on error
  }
}

BOOST_AUTO_TEST_CASE(external_metadata_file_checks) {
  using outcome = rt::external_metadata_read::outcome;
  rt::private_temp_dir temp{"/tmp"};
  auto path = temp.path() + "/meta.json";
  auto missing = rt::read_external_metadata(path, now_ms());
  BOOST_CHECK(missing.result == outcome::unreadable);
  BOOST_CHECK(missing.error.find(path) != std::string::npos);
  write_file(path, R"({"static": {"team": "perf"}})");
  auto ok = rt::read_external_metadata(path, now_ms());
  BOOST_REQUIRE_MESSAGE(ok.result == outcome::ok, ok.error);
  BOOST_CHECK_EQUAL(ok.data.static_json, R"({"team":"perf"})");
  // gProfiler's staleness rule: not modified for more than 5 minutes.
  age_file(path, 290s);
  BOOST_CHECK(rt::read_external_metadata(path, now_ms()).result == outcome::ok);
  age_file(path, 310s);
  auto stale = rt::read_external_metadata(path, now_ms());
  BOOST_CHECK(stale.result == outcome::stale);
  BOOST_CHECK(stale.error.find("stale") != std::string::npos);
  BOOST_CHECK(stale.error.find(path) != std::string::npos);
  write_file(path, "{\"static\": 1}");
  auto invalid = rt::read_external_metadata(path, now_ms());
  BOOST_CHECK(invalid.result == outcome::invalid);
  BOOST_CHECK(invalid.error.find(path) != std::string::npos);
  BOOST_CHECK_EQUAL(invalid.data.static_json, "{}");
  // A FIFO or a directory is refused without blocking on it.
  auto fifo = temp.path() + "/fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  BOOST_CHECK(rt::read_external_metadata(fifo, now_ms()).result
              == outcome::unreadable);
  BOOST_CHECK(rt::read_external_metadata(temp.path(), now_ms()).result
              == outcome::unreadable);
  // Bounded.
  write_file(path, "{\"static\": {\"x\": \""
                       + std::string(rt::external_metadata_max_bytes, 'x')
                       + "\"}}");
  auto big = rt::read_external_metadata(path, now_ms());
  BOOST_CHECK(big.result == outcome::unreadable);
  BOOST_CHECK(big.error.find("larger than") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// -- against a stand-in metadata service on 127.0.0.1
// --------------------------

BOOST_AUTO_TEST_SUITE(cloud_metadata_real)

BOOST_AUTO_TEST_CASE(each_cloud_gets_its_fields_from_its_service) {
  metadata_stand_in service;
  auto http = rt::make_curl_http_client(rt::cloud_http_options());
  auto aws = rt::look_up_cloud(*http, sources("aws-nitro", service.url()));
  BOOST_REQUIRE_MESSAGE(aws.error.empty(), aws.error);
  BOOST_CHECK_EQUAL(aws.cloud, "aws");
  BOOST_CHECK_EQUAL(aws.metadata.provider, "aws");
  auto a = info_of(aws.metadata);
  BOOST_CHECK(keys_of(a)
              == (std::vector<std::string>{"region", "zone", "instance_type",
                                           "life_cycle", "account_id",
                                           "image_id", "instance_id"}));
  BOOST_CHECK_EQUAL(str(a, "instance_id"), "i-0123456789abcdef0");
  BOOST_CHECK_EQUAL(str(a, "life_cycle"), "spot");
  BOOST_CHECK_EQUAL(str(a, "zone"), "eu-west-1b");

  auto gcp = rt::look_up_cloud(*http, sources("gcp", service.url()));
  BOOST_REQUIRE_MESSAGE(gcp.error.empty(), gcp.error);
  auto g = info_of(gcp.metadata);
  BOOST_CHECK_EQUAL(gcp.metadata.provider, "gcp");
  BOOST_CHECK_EQUAL(str(g, "instance_type"), "n2-standard-4");
  BOOST_CHECK_EQUAL(str(g, "instance_id"), "4520031799277581759");
  BOOST_CHECK(g["preemptible"].IsTrue());
  BOOST_CHECK(g["preempted"].IsFalse());

  auto azure = rt::look_up_cloud(*http, sources("azure", service.url()));
  BOOST_REQUIRE_MESSAGE(azure.error.empty(), azure.error);
  auto z = info_of(azure.metadata);
  BOOST_CHECK_EQUAL(azure.metadata.provider, "azure");
  BOOST_CHECK_EQUAL(str(z, "region"), "westeurope");
  BOOST_CHECK_EQUAL(str(z["image_info"], "image_sku"), "22_04-lts-gen2");

  auto fargate_src = sources("kvm", service.url());
  fargate_src.aws_execution_env = "AWS_ECS_FARGATE";
  fargate_src.ecs_metadata_uri = service.url() + "/v4/container";
  fargate_src.aws_region = "us-west-2";
  auto fargate = rt::look_up_cloud(*http, fargate_src);
  BOOST_REQUIRE_MESSAGE(fargate.error.empty(), fargate.error);
  BOOST_CHECK_EQUAL(str(info_of(fargate.metadata), "execution_env"),
                    "AWS_ECS_FARGATE");

  // Three AWS requests (token, identity, life cycle), one each for GCP,
  // Azure and ECS, each made as the real service wants it.
  BOOST_CHECK_EQUAL(service.requests().Size(), 6u);
  service.check_requests_valid();
}

BOOST_AUTO_TEST_CASE(no_dmi_match_no_request) {
  metadata_stand_in service;
  auto http = rt::make_curl_http_client(rt::cloud_http_options());
  for (auto fixture : {"kvm", "hyperv", "dell", "no-such-dir"}) {
    auto r = rt::look_up_cloud(*http, sources(fixture, service.url()));
    BOOST_CHECK_EQUAL(r.cloud, "");
    BOOST_CHECK_EQUAL(r.metadata.provider, "unknown");
    BOOST_CHECK_EQUAL(r.metadata.info_json, "");
  }
  BOOST_CHECK_EQUAL(http->stats().requests, 0u);
  BOOST_CHECK_EQUAL(service.requests().Size(), 0u);
}

BOOST_AUTO_TEST_CASE(a_service_that_fails_leaves_unknown) {
  metadata_stand_in service;
  auto http = rt::make_curl_http_client(rt::cloud_http_options());
  // DMI says AWS, but the service there is GCP's only (404 for AWS paths
  // would be the same): no fields, an error that says which request.
  auto src = sources("aws-nitro", service.url() + "/nothing-here");
  auto r = rt::look_up_cloud(*http, src);
  BOOST_CHECK_EQUAL(r.cloud, "aws");
  BOOST_CHECK_EQUAL(r.metadata.provider, "unknown");
  BOOST_CHECK_MESSAGE(r.error.find("status 400") != std::string::npos, r.error);
  BOOST_CHECK_MESSAGE(r.error.find("/latest/api/token") != std::string::npos,
                      r.error);
  // Nothing listens: a connection error, quickly.
  src.aws_url = "http://127.0.0.1:1";
  auto refused = rt::look_up_cloud(*http, src);
  BOOST_CHECK_EQUAL(refused.metadata.provider, "unknown");
  BOOST_CHECK(!refused.error.empty());
}

BOOST_AUTO_TEST_CASE(the_environments_proxy_is_not_used) {
  metadata_stand_in service;
  // A proxy that does not exist: asked through it, the lookup would fail.
  ::setenv("http_proxy", "http://127.0.0.1:1", 1);
  ::setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
  auto http = rt::make_curl_http_client(rt::cloud_http_options());
  auto r = rt::look_up_cloud(*http, sources("gcp", service.url()));
  ::unsetenv("http_proxy");
  ::unsetenv("HTTP_PROXY");
  BOOST_CHECK_MESSAGE(r.error.empty(), r.error);
  BOOST_CHECK_EQUAL(r.metadata.provider, "gcp");
}

BOOST_AUTO_TEST_CASE(the_lookup_runs_in_the_background) {
  metadata_stand_in service;
  auto holder = std::make_shared<rt::cloud_metadata_holder>();
  {
    rt::cloud_metadata_lookup lookup{
        sources("azure", service.url()),
        rt::make_curl_http_client(rt::cloud_http_options()), holder};
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!lookup.done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    BOOST_REQUIRE(lookup.done());
  }
  BOOST_CHECK_EQUAL(holder->get().provider, "azure");
  BOOST_CHECK(holder->get().info_json.find("\"vm-profiled-1\"")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_service_that_never_answers_costs_nothing) {
  metadata_stand_in service{true};
  auto holder = std::make_shared<rt::cloud_metadata_holder>();
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto lookup = std::make_unique<rt::cloud_metadata_lookup>(
      sources("aws-nitro", service.url()),
      rt::make_curl_http_client(rt::cloud_http_options()), holder);
  auto started = clock::now() - t0;
  // The request is in flight and hangs; the header says unknown meanwhile.
  auto deadline = clock::now() + 5s;
  while (service.requests().Size() == 0 && clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  BOOST_CHECK_EQUAL(service.requests().Size(), 1u);
  BOOST_CHECK(!lookup->done());
  BOOST_CHECK_EQUAL(holder->get().provider, "unknown");
  // Stopping interrupts it.
  auto t1 = clock::now();
  lookup.reset();
  auto stopped = clock::now() - t1;
  using ms = std::chrono::milliseconds;
  std::cout
      << "never-answering metadata service: starting the lookup took "
      << std::chrono::duration_cast<std::chrono::microseconds>(started).count()
      << " us, stopping it " << std::chrono::duration_cast<ms>(stopped).count()
      << " ms" << std::endl;
  BOOST_CHECK(started < 50ms);
  BOOST_CHECK(stopped < 2500ms);
  BOOST_CHECK_EQUAL(holder->get().provider, "unknown");
}

BOOST_AUTO_TEST_SUITE_END()
