#include "runtime/cloud_metadata.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "config/checks.hpp"
#include "format/json.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"

namespace gpa::rt {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// DMI strings are short; anything longer is cut (and matches nothing).
constexpr size_t max_dmi_bytes = 256;

std::string trimmed(std::string x) {
  auto b = x.find_first_not_of(" \t\r\n");
  auto e = x.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string{} : x.substr(b, e - b + 1);
}

std::string lower(std::string x) {
  std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return x;
}

bool starts_with(const std::string& x, std::string_view prefix) {
  return x.compare(0, prefix.size(), prefix) == 0;
}

/// Parses a service's answer (untrusted: depth-checked) into `doc`, which
/// must be an object. Returns "" or what is wrong.
std::string parse_object(rapidjson::Document& doc, std::string_view text,
                         const char* what) {
  if (auto why = format::parse_json(doc, text); !why.empty())
    return std::string{what} + " is not valid JSON: " + why;
  if (!doc.IsObject())
    return std::string{what} + " is not a JSON object";
  return {};
}

/// The member `key` of `obj`, or null (and `err` says which is missing).
const rapidjson::Value* need(const rapidjson::Value& obj, const char* key,
                             const char* what, std::string& err) {
  if (obj.IsObject()) {
    auto i = obj.FindMember(key);
    if (i != obj.MemberEnd())
      return &i->value;
  }
  if (err.empty())
    err = std::string{what} + " has no \"" + key + "\"";
  return nullptr;
}

/// Writes one cloud_info member per (name, value) pair, values as the
/// service gave them (gProfiler passes them on untouched).
class info_writer {
public:
  info_writer() : w_(buf_) {
    w_.StartObject();
  }

  void value(const char* name, const rapidjson::Value* v) {
    w_.Key(name);
    if (v)
      v->Accept(w_);
    else
      w_.Null();
  }

  void text(const char* name, std::string_view v) {
    w_.Key(name);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }

  void boolean(const char* name, bool v) {
    w_.Key(name);
    w_.Bool(v);
  }

  json_writer& raw() {
    return w_;
  }

  std::string finish() {
    w_.EndObject();
    return {buf_.GetString(), buf_.GetSize()};
  }

private:
  rapidjson::StringBuffer buf_;
  json_writer w_;
};

/// Python's `value == "TRUE"`.
bool is_true_text(const rapidjson::Value& v) {
  return v.IsString()
         && std::string_view{v.GetString(), v.GetStringLength()} == "TRUE";
}

/// Python's `.rpartition("/")[2]` of a string value.
std::string last_part(const rapidjson::Value& v) {
  std::string s{v.GetString(), v.GetStringLength()};
  auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

std::string base(const std::string& url) {
  auto end = url.find_last_not_of('/');
  return end == std::string::npos ? std::string{} : url.substr(0, end + 1);
}

/// One request to a metadata service: the body of a 2xx answer, or an
/// error naming the request and what went wrong.
caf::expected<std::string>
ask(http_client& http, const cloud_sources& src, std::string method,
    std::string url, std::vector<std::pair<std::string, std::string>> headers) {
  http_request req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers = std::move(headers);
  req.timeout = src.timeout;
  req.connect_timeout = src.connect_timeout;
  auto resp = http.send(req);
  if (!resp)
    return std::move(resp.error());
  if (resp->status < 200 || resp->status > 299)
    return make_gpa_error(ec::upload_failed,
                          req.method + " " + config::redact_url(req.url)
                              + ": status " + std::to_string(resp->status));
  return std::move(resp->body);
}

cloud_lookup_result fail(std::string cloud, std::string why) {
  cloud_lookup_result r;
  r.cloud = std::move(cloud);
  r.error = std::move(why);
  return r;
}

cloud_lookup_result look_up_aws(http_client& http, const cloud_sources& src) {
  auto root = base(src.aws_url);
  auto token = ask(http, src, "PUT", root + "/latest/api/token",
                   {{"X-aws-ec2-metadata-token-ttl-seconds", "120"}});
  if (!token)
    return fail("aws", message_of(token.error()));
  std::vector<std::pair<std::string, std::string>> auth{
      {"X-aws-ec2-metadata-token", *token}};
  auto identity
      = ask(http, src, "GET",
            root + "/latest/dynamic/instance-identity/document", auth);
  if (!identity)
    return fail("aws", message_of(identity.error()));
  auto life_cycle = ask(http, src, "GET",
                        root + "/latest/meta-data/instance-life-cycle", auth);
  if (!life_cycle)
    return fail("aws", message_of(life_cycle.error()));
  cloud_lookup_result r;
  r.cloud = "aws";
  r.error = parse_aws_metadata(*identity, *life_cycle, r.metadata);
  return r;
}

cloud_lookup_result look_up_fargate(http_client& http,
                                    const cloud_sources& src) {
  if (src.ecs_metadata_uri.empty())
    return fail("aws", "AWS_EXECUTION_ENV is AWS_ECS_FARGATE but "
                       "ECS_CONTAINER_METADATA_URI_V4 is not set");
  if (auto why = config::check_server_url(src.ecs_metadata_uri); !why.empty())
    return fail("aws", "ECS_CONTAINER_METADATA_URI_V4: " + why);
  auto answer = ask(http, src, "GET", src.ecs_metadata_uri, {});
  if (!answer)
    return fail("aws", message_of(answer.error()));
  cloud_lookup_result r;
  r.cloud = "aws";
  r.error = parse_aws_container_metadata(*answer, src.aws_execution_env,
                                         src.aws_region, r.metadata);
  return r;
}

cloud_lookup_result look_up_gcp(http_client& http, const cloud_sources& src) {
  auto answer
      = ask(http, src, "GET",
            base(src.gcp_url) + "/computeMetadata/v1/instance/?recursive=true",
            {{"Metadata-Flavor", "Google"}});
  if (!answer)
    return fail("gcp", message_of(answer.error()));
  cloud_lookup_result r;
  r.cloud = "gcp";
  r.error = parse_gcp_metadata(*answer, r.metadata);
  return r;
}

cloud_lookup_result look_up_azure(http_client& http, const cloud_sources& src) {
  auto answer = ask(http, src, "GET",
                    base(src.azure_url)
                        + "/metadata/instance/compute/?api-version=2019-08-15",
                    {{"Metadata", "true"}});
  if (!answer)
    return fail("azure", message_of(answer.error()));
  cloud_lookup_result r;
  r.cloud = "azure";
  r.error = parse_azure_metadata(*answer, r.metadata);
  return r;
}

} // namespace

dmi_info read_dmi(const std::string& dir) {
  auto read = [&](const char* name) {
    return trimmed(read_small_file(dir + "/" + name, max_dmi_bytes));
  };
  dmi_info d;
  d.sys_vendor = read("sys_vendor");
  d.product_name = read("product_name");
  d.product_version = read("product_version");
  d.product_serial = read("product_serial");
  d.bios_vendor = read("bios_vendor");
  d.bios_version = read("bios_version");
  d.board_vendor = read("board_vendor");
  d.chassis_vendor = read("chassis_vendor");
  d.chassis_asset_tag = read("chassis_asset_tag");
  return d;
}

std::string cloud_of_dmi(const dmi_info& d) {
  for (auto* vendor :
       {&d.sys_vendor, &d.bios_vendor, &d.board_vendor, &d.chassis_vendor})
    if (*vendor == "Amazon EC2")
      return "aws";
  if (lower(d.bios_version).find("amazon") != std::string::npos
      || lower(d.product_version).find("amazon") != std::string::npos)
    return "aws";
  if (d.product_name == "Google Compute Engine" || d.sys_vendor == "Google"
      || d.bios_vendor == "Google"
      || starts_with(d.product_serial, "GoogleCloud-"))
    return "gcp";
  if (d.chassis_asset_tag == "7783-7084-3265-9085-8269-3286-77")
    return "azure";
  return {};
}

std::string parse_aws_metadata(std::string_view identity,
                               std::string_view life_cycle,
                               format::cloud_metadata& out) {
  rapidjson::Document doc;
  if (auto why = parse_object(doc, identity, "the instance identity document");
      !why.empty())
    return why;
  std::string err;
  const char* what = "the instance identity document";
  auto region = need(doc, "region", what, err);
  auto zone = need(doc, "availabilityZone", what, err);
  auto type = need(doc, "instanceType", what, err);
  auto account = need(doc, "accountId", what, err);
  auto image = need(doc, "imageId", what, err);
  auto id = need(doc, "instanceId", what, err);
  if (!err.empty())
    return err;
  info_writer w;
  w.value("region", region);
  w.value("zone", zone);
  w.value("instance_type", type);
  w.text("life_cycle", life_cycle);
  w.value("account_id", account);
  w.value("image_id", image);
  w.value("instance_id", id);
  out.provider = "aws";
  out.info_json = w.finish();
  return {};
}

std::string parse_aws_container_metadata(std::string_view container,
                                         const std::string& execution_env,
                                         const std::string& region,
                                         format::cloud_metadata& out) {
  rapidjson::Document doc;
  const char* what = "the ECS container metadata";
  if (auto why = parse_object(doc, container, what); !why.empty())
    return why;
  if (region.empty())
    return "AWS_REGION is not set";
  std::string err;
  auto arn = need(doc, "ContainerARN", what, err);
  if (!err.empty())
    return err;
  info_writer w;
  w.text("execution_env", execution_env);
  w.text("region", region);
  w.value("container_arn", arn);
  out.provider = "aws";
  out.info_json = w.finish();
  return {};
}

std::string parse_gcp_metadata(std::string_view instance,
                               format::cloud_metadata& out) {
  rapidjson::Document doc;
  const char* what = "the instance metadata";
  if (auto why = parse_object(doc, instance, what); !why.empty())
    return why;
  std::string err;
  auto zone = need(doc, "zone", what, err);
  auto type = need(doc, "machineType", what, err);
  auto scheduling = need(doc, "scheduling", what, err);
  auto preemptible
      = scheduling ? need(*scheduling, "preemptible", "its scheduling", err)
                   : nullptr;
  auto preempted = need(doc, "preempted", what, err);
  auto id = need(doc, "id", what, err);
  auto image = need(doc, "image", what, err);
  auto name = need(doc, "name", what, err);
  if (!err.empty())
    return err;
  if (!zone->IsString() || !type->IsString())
    return "the instance metadata's zone and machineType are not strings";
  std::string id_text;
  if (id->IsString())
    id_text.assign(id->GetString(), id->GetStringLength());
  else if (id->IsUint64())
    id_text = std::to_string(id->GetUint64());
  else if (id->IsInt64())
    id_text = std::to_string(id->GetInt64());
  else
    return "the instance metadata's id is not a number";
  info_writer w;
  w.text("zone", last_part(*zone));
  w.text("instance_type", last_part(*type));
  w.boolean("preempted", is_true_text(*preempted));
  w.boolean("preemptible", is_true_text(*preemptible));
  w.text("instance_id", id_text);
  w.value("image_id", image);
  w.value("name", name);
  out.provider = "gcp";
  out.info_json = w.finish();
  return {};
}

std::string parse_azure_metadata(std::string_view compute,
                                 format::cloud_metadata& out) {
  rapidjson::Document doc;
  const char* what = "the compute metadata";
  if (auto why = parse_object(doc, compute, what); !why.empty())
    return why;
  std::string err;
  auto size = need(doc, "vmSize", what, err);
  auto zone = need(doc, "zone", what, err);
  auto location = need(doc, "location", what, err);
  auto subscription = need(doc, "subscriptionId", what, err);
  auto group = need(doc, "resourceGroupName", what, err);
  auto resource = need(doc, "resourceId", what, err);
  auto vm = need(doc, "vmId", what, err);
  auto name = need(doc, "name", what, err);
  if (!err.empty())
    return err;
  // The image only when the storage profile names one, and then all of it.
  const rapidjson::Value* image = nullptr;
  auto storage = doc.FindMember("storageProfile");
  if (storage != doc.MemberEnd() && storage->value.IsObject()) {
    auto ref = storage->value.FindMember("imageReference");
    if (ref != storage->value.MemberEnd() && ref->value.IsObject())
      image = &ref->value;
  }
  const rapidjson::Value *image_id = nullptr, *offer = nullptr,
                         *publisher = nullptr, *sku = nullptr,
                         *version = nullptr;
  if (image) {
    const char* in = "its image reference";
    image_id = need(*image, "id", in, err);
    offer = need(*image, "offer", in, err);
    publisher = need(*image, "publisher", in, err);
    sku = need(*image, "sku", in, err);
    version = need(*image, "version", in, err);
    if (!err.empty())
      return err;
  }
  info_writer w;
  w.value("instance_type", size);
  w.value("zone", zone);
  w.value("region", location);
  w.value("subscription_id", subscription);
  w.value("resource_group_name", group);
  w.value("resource_id", resource);
  w.value("instance_id", vm);
  w.value("name", name);
  if (image) {
    auto& j = w.raw();
    j.Key("image_info");
    j.StartObject();
    w.value("image_id", image_id);
    w.value("image_offer", offer);
    w.value("image_publisher", publisher);
    w.value("image_sku", sku);
    w.value("image_version", version);
    j.EndObject();
  } else {
    w.value("image_info", nullptr);
  }
  out.provider = "azure";
  out.info_json = w.finish();
  return {};
}

cloud_lookup_result look_up_cloud(http_client& http, const cloud_sources& src) {
  if (src.aws_execution_env == "AWS_ECS_FARGATE")
    return look_up_fargate(http, src);
  auto cloud = cloud_of_dmi(read_dmi(src.dmi_dir));
  if (cloud == "aws")
    return look_up_aws(http, src);
  if (cloud == "gcp")
    return look_up_gcp(http, src);
  if (cloud == "azure")
    return look_up_azure(http, src);
  return {};
}

format::cloud_metadata cloud_metadata_holder::get() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return value_;
}

void cloud_metadata_holder::set(format::cloud_metadata value) {
  std::lock_guard<std::mutex> guard{mutex_};
  value_ = std::move(value);
}

cloud_metadata_lookup::cloud_metadata_lookup(
    cloud_sources src, std::unique_ptr<http_client> http,
    std::shared_ptr<cloud_metadata_holder> into)
    : http_(std::move(http)) {
  auto* client = http_.get();
  thread_ = std::thread(
      [this, client, src = std::move(src), into = std::move(into)] {
        auto lg = log::get("metadata");
        auto r = look_up_cloud(*client, src);
        if (r.cloud.empty())
          lg->info("cloud metadata: the DMI data in {} names no cloud; no "
                   "metadata service asked (cloud_provider unknown)",
                   src.dmi_dir);
        else if (!r.error.empty() && stopping_.load())
          lg->info("cloud metadata: stopped before {}'s metadata service "
                   "answered",
                   r.cloud);
        else if (!r.error.empty())
          lg->warn("cloud metadata: the host runs on {}, but its metadata "
                   "service did not give the instance's metadata: {} "
                   "(cloud_provider stays unknown)",
                   r.cloud, r.error);
        else
          lg->info("cloud metadata: {} {}", r.metadata.provider,
                   r.metadata.info_json);
        if (r.error.empty() && !r.cloud.empty())
          into->set(std::move(r.metadata));
        done_.store(true);
      });
}

void cloud_metadata_lookup::stop() {
  stopping_.store(true);
  http_->interrupt();
}

cloud_metadata_lookup::~cloud_metadata_lookup() {
  stop();
  if (thread_.joinable())
    thread_.join();
}

http_client_options cloud_http_options() {
  http_client_options o;
  o.use_proxy = false;
  o.max_response_bytes = size_t{1} << 20;
  return o;
}

} // namespace gpa::rt
