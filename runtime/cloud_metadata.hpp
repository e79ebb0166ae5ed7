#pragma once

// Cloud instance metadata as gProfiler reports it (granulate-utils'
// metadata/cloud.py): AWS, GCP and Azure, with gProfiler's fields.
//
// Unlike gProfiler, which asks all three services at start and waits for
// them, the agent asks a service only when the machine's own DMI data
// (/sys/class/dmi/id) names that cloud: no probe traffic elsewhere. The
// lookup runs once, in a thread of its own; until it answers, the header
// says "unknown". AWS ECS on Fargate (no DMI) is told by its environment,
// as in gProfiler.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <caf/expected.hpp>

#include "config/intervals.hpp"
#include "format/host.hpp"
#include "runtime/http_client.hpp"

namespace gpa::rt {

/// The DMI strings that name a cloud, trimmed ("" when missing).
struct dmi_info {
  std::string sys_vendor;
  std::string product_name;
  std::string product_version;
  std::string product_serial;
  std::string bios_vendor;
  std::string bios_version;
  std::string board_vendor;
  std::string chassis_vendor;
  std::string chassis_asset_tag;
};

/// Reads the DMI files of `dir` (/sys/class/dmi/id): each a regular file,
/// at most 256 bytes. A missing or unreadable one is "" (product_serial is
/// readable by root only).
dmi_info read_dmi(const std::string& dir);

/// The cloud that the DMI data names, "aws", "gcp" or "azure", or "" for
/// none. AWS: a vendor (system, BIOS, board or chassis) "Amazon EC2"
/// (Nitro), or a BIOS or product version with "amazon" in it (Xen, e.g.
/// "4.11.amazon"). GCP: product "Google Compute Engine", system or BIOS
/// vendor "Google", or a serial "GoogleCloud-...". Azure: the chassis asset
/// tag 7783-7084-3265-9085-8269-3286-77 that Azure gives every VM (a plain
/// Hyper-V VM, with the same vendor and product, does not have it).
std::string cloud_of_dmi(const dmi_info& dmi);

/// Where the metadata services are, and what the environment says.
struct cloud_sources {
  /// The directory of the DMI data.
  std::string dmi_dir = "/sys/class/dmi/id";
  /// Base URLs (no trailing path): the fixed paths are appended.
  std::string aws_url = "http://169.254.169.254";
  std::string gcp_url = "http://metadata.google.internal";
  std::string azure_url = "http://169.254.169.254";
  /// AWS_EXECUTION_ENV; "AWS_ECS_FARGATE" means ECS on Fargate, whose task
  /// metadata is at ECS_CONTAINER_METADATA_URI_V4 (`ecs_metadata_uri`), in
  /// region AWS_REGION (`aws_region`).
  std::string aws_execution_env;
  std::string ecs_metadata_uri;
  std::string aws_region;
  /// Longest time each request may take, and its connect.
  std::chrono::milliseconds timeout{intervals::cloud_metadata_timeout};
  std::chrono::milliseconds connect_timeout{
      intervals::cloud_metadata_connect_timeout};
};

/// gProfiler's AWS instance metadata from the instance identity document
/// and the instance life cycle ("spot", "on-demand"): cloud_info {region,
/// zone, instance_type, life_cycle, account_id, image_id, instance_id}.
/// Returns "" and fills `out`, or says what is missing.
std::string parse_aws_metadata(std::string_view identity,
                               std::string_view life_cycle,
                               format::cloud_metadata& out);

/// gProfiler's AWS container metadata (ECS on Fargate) from the task
/// metadata v4 "container" answer: cloud_info {execution_env, region,
/// container_arn}.
std::string parse_aws_container_metadata(std::string_view container,
                                         const std::string& execution_env,
                                         const std::string& region,
                                         format::cloud_metadata& out);

/// gProfiler's GCP metadata from `instance/?recursive=true`: cloud_info
/// {zone, instance_type, preempted, preemptible, instance_id, image_id,
/// name}, zone and machine type without their "projects/N/..." prefix, the
/// two flags booleans of the service's "TRUE"/"FALSE", the numeric id as a
/// string.
std::string parse_gcp_metadata(std::string_view instance,
                               format::cloud_metadata& out);

/// gProfiler's Azure metadata from `instance/compute`: cloud_info
/// {instance_type, zone, region, subscription_id, resource_group_name,
/// resource_id, instance_id, name, image_info}, image_info {image_id,
/// image_offer, image_publisher, image_sku, image_version} of the storage
/// profile's image reference, or null without one.
std::string parse_azure_metadata(std::string_view compute,
                                 format::cloud_metadata& out);

/// What one lookup found: the metadata (provider "unknown" when none), the
/// cloud that DMI (or Fargate's environment) named ("" for none) and, if
/// that cloud's service did not give its metadata, why.
struct cloud_lookup_result {
  format::cloud_metadata metadata;
  std::string cloud;
  std::string error;
};

/// Looks the host's cloud up: reads the DMI data, and only if it names a
/// cloud (or the environment says ECS on Fargate) asks that cloud's
/// service through `http` (blocking, each request bounded by the sources'
/// timeouts). AWS: PUT /latest/api/token (IMDSv2, token TTL 120 s), then
/// GET /latest/dynamic/instance-identity/document and
/// /latest/meta-data/instance-life-cycle with the token. GCP: GET
/// /computeMetadata/v1/instance/?recursive=true with "Metadata-Flavor:
/// Google". Azure: GET /metadata/instance/compute/?api-version=2019-08-15
/// with "Metadata: true". A status other than 2xx, a timeout or an answer
/// without gProfiler's fields leaves the provider "unknown".
cloud_lookup_result look_up_cloud(http_client& http, const cloud_sources& src);

/// The cloud metadata the header shows now; "unknown" until the lookup sets
/// it. Thread-safe: the lookup's thread sets, the merger reads.
class cloud_metadata_holder {
public:
  format::cloud_metadata get() const;
  void set(format::cloud_metadata value);

private:
  mutable std::mutex mutex_;
  format::cloud_metadata value_;
};

/// Runs look_up_cloud() once in a thread of its own and puts the result
/// into a holder, logging what it found (logger "metadata"). stop() and the
/// destructor interrupt a request in flight (libcurl notices within about
/// a second); the destructor then joins the thread, so it never waits for a
/// service that does not answer.
class cloud_metadata_lookup {
public:
  cloud_metadata_lookup(cloud_sources src, std::unique_ptr<http_client> http,
                        std::shared_ptr<cloud_metadata_holder> into);
  ~cloud_metadata_lookup();
  cloud_metadata_lookup(const cloud_metadata_lookup&) = delete;
  cloud_metadata_lookup& operator=(const cloud_metadata_lookup&) = delete;

  /// Interrupts a request in flight (the lookup then ends, leaving the
  /// holder as it is) without waiting. Thread-safe.
  void stop();

  /// Whether the lookup has finished (the holder has its final value).
  bool done() const {
    return done_.load();
  }

private:
  std::unique_ptr<http_client> http_;
  std::atomic<bool> done_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// The settings of a client for metadata services: no proxy (the services
/// are on the link), answers up to 1 MiB (GCP's recursive answer carries
/// the instance's attributes and keys).
http_client_options cloud_http_options();

} // namespace gpa::rt
