#pragma once

// gzip on zlib: the upload body encoding of Performance Studio
// (Content-Encoding: gzip), and its inverse for tests and diagnostics.

#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace gpa::rt {

/// Compresses `data` into a gzip stream (RFC 1952, zlib's deflate with the
/// gzip wrapper) at zlib `level` (1 fastest .. 9 smallest; 6 is zlib's
/// default).
/// Writes into `out`, replacing its contents, so that a caller can reuse the
/// buffer's capacity. Returns an error naming zlib's message on failure.
caf::error gzip_compress(std::string_view data, std::string& out,
                         int level = 6);

/// Convenience overload that returns the compressed bytes.
caf::expected<std::string> gzip_compress(std::string_view data, int level = 6);

/// Decompresses a gzip (or zlib) stream. Refuses to produce more than
/// `max_out` bytes, so a hostile stream cannot exhaust memory.
caf::expected<std::string> gzip_decompress(std::string_view data,
                                           size_t max_out = size_t{1} << 30);

} // namespace gpa::rt
