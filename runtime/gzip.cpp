#include "runtime/gzip.hpp"

#include <algorithm>

#include <zlib.h>

#include "runtime/error.hpp"

namespace gpa::rt {

namespace {

/// zlib's windowBits for "raw deflate wrapped in a gzip header".
constexpr int gzip_window_bits = 15 + 16;

/// zlib's windowBits for "detect gzip or zlib header" on inflate.
constexpr int auto_window_bits = 15 + 32;

/// zlib counts in uInt; feed it at most this much per call.
constexpr size_t max_chunk = size_t{1} << 30;

} // namespace

caf::error gzip_compress(std::string_view data, std::string& out, int level) {
  out.clear();
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, gzip_window_bits, 8,
                   Z_DEFAULT_STRATEGY)
      != Z_OK)
    return make_gpa_error(ec::upload_failed,
                          "cannot initialise zlib for gzip compression");
  // deflateBound is exact enough to compress in one pass for inputs that fit
  // one chunk; larger inputs grow the buffer as needed.
  out.resize(
      deflateBound(&zs, static_cast<uLong>(std::min(data.size(), max_chunk)))
      + 64);
  size_t in_pos = 0;
  size_t out_pos = 0;
  int rc = Z_OK;
  do {
    size_t in_len = std::min(data.size() - in_pos, max_chunk);
    zs.next_in
        = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_pos));
    zs.avail_in = static_cast<uInt>(in_len);
    bool last = in_pos + in_len == data.size();
    do {
      if (out.size() - out_pos < 64)
        out.resize(out.size() * 2);
      size_t room = std::min(out.size() - out_pos, max_chunk);
      zs.next_out = reinterpret_cast<Bytef*>(&out[out_pos]);
      zs.avail_out = static_cast<uInt>(room);
      rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
      out_pos += room - zs.avail_out;
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        out.clear();
        return make_gpa_error(ec::upload_failed, "zlib deflate failed");
      }
    } while (zs.avail_out == 0 || (last && rc != Z_STREAM_END));
    in_pos += in_len;
  } while (in_pos < data.size());
  deflateEnd(&zs);
  out.resize(out_pos);
  return caf::none;
}

caf::expected<std::string> gzip_compress(std::string_view data, int level) {
  std::string out;
  if (auto err = gzip_compress(data, out, level))
    return err;
  return out;
}

caf::expected<std::string> gzip_decompress(std::string_view data,
                                           size_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, auto_window_bits) != Z_OK)
    return make_gpa_error(ec::invalid_request,
                          "cannot initialise zlib for gzip decompression");
  std::string out;
  char buf[64 * 1024];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(std::min(data.size(), max_chunk));
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string msg = zs.msg ? zs.msg : "truncated or corrupt stream";
      inflateEnd(&zs);
      return make_gpa_error(ec::invalid_request,
                            "gzip data is invalid: " + msg);
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_out) {
      inflateEnd(&zs);
      return make_gpa_error(ec::invalid_request, "gzip data expands past "
                                                     + std::to_string(max_out)
                                                     + " bytes");
    }
  }
  inflateEnd(&zs);
  return out;
}

} // namespace gpa::rt
