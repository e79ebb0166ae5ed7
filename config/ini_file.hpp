#pragma once

// The config file format of gProfiler: configargparse's DefaultConfigFileParser
// (a subset of INI and YAML). Pure text to settings; the keys are checked
// against the option table by load.cpp.
//
//   # comment            ; comment            --- (ignored)
//   [section]            (ignored, as a comment)
//   key = value          key: value           key value
//   --key = value        (the flag as written on the command line)
//   flag                 (a bare key: "true")
//   key = "quoted"       (one pair of quotes around the value is removed)
//   key = value # note   (a comment after a value needs a space before it)
//   pids = [1, 2, 3]     (a list: JSON, else split at commas)

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpa::config {

/// One setting of a configargparse-style config file.
struct ini_setting {
  /// 1-based number of the line it is on.
  size_t line = 0;
  /// The key as written ("profiling-frequency" or "--profiling-frequency").
  std::string key;
  /// The value, without quotes and trailing comment; "true" for a bare key.
  std::string value;
  /// Whether the value is a list ("[a, b]"); then `items` holds its elements.
  bool is_list = false;
  std::vector<std::string> items;
};

/// The settings of a file, or why a line is not one.
struct ini_parse_result {
  /// In file order; a key may appear more than once (the last one wins).
  std::vector<ini_setting> settings;
  /// Empty, or what is wrong with line `error_line` (never its value).
  std::string error;
  size_t error_line = 0;
};

/// Parses `text` as configargparse's DefaultConfigFileParser does: lines
/// end at \n, \r\n or \r; leading and trailing (ASCII) whitespace is
/// ignored; a UTF-8 byte-order mark at the start is skipped. Linear in the
/// text.
ini_parse_result parse_ini(std::string_view text);

/// The elements of a list value "[a, b]": a JSON array's strings and
/// numbers, else the text between the brackets split at commas, each
/// element trimmed. std::nullopt if `value` is not in brackets.
std::optional<std::vector<std::string>> ini_list(std::string_view value);

} // namespace gpa::config
