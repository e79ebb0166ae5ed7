#include "format/collapse.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

// The hot path is process_line(): memchr splits lines, frame lines are parsed
// in place without copying, (symbol, dso) pairs are hashed with a
// wyhash-style function and interned in an open-addressing table. A record's
// frames are kept as IDs and counted in a second table keyed by the ID
// sequence. Text is rendered only once per unique frame, when asked for.

namespace gpa::format {

namespace {

// -- hashing ------------------------------------------------------------------

constexpr uint64_t k0 = 0xa0761d6478bd642full;
constexpr uint64_t k1 = 0xe7037ed1a0b428dbull;
constexpr uint64_t k2 = 0x8ebc6af09c88c6e3ull;
constexpr uint64_t k3 = 0x589965cc75374cc3ull;

/// 64x64 -> 128 multiply, folded: the mixing step of wyhash.
inline uint64_t mum(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline uint64_t rd8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t rd4(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

/// A wyhash-style hash of `n` bytes at `p`. Reads only inside [p, p + n).
inline uint64_t hash_bytes(const char* p, size_t n, uint64_t seed) {
  seed ^= k0;
  uint64_t a;
  uint64_t b;
  if (n <= 16) {
    if (n >= 4) {
      size_t q = (n >> 3) << 2;
      a = (rd4(p) << 32) | rd4(p + q);
      b = (rd4(p + n - 4) << 32) | rd4(p + n - 4 - q);
    } else if (n > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16)
          | (uint64_t{static_cast<uint8_t>(p[n >> 1])} << 8)
          | static_cast<uint8_t>(p[n - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = n;
    if (i > 48) {
      uint64_t s1 = seed;
      uint64_t s2 = seed;
      do {
        seed = mum(rd8(p) ^ k1, rd8(p + 8) ^ seed);
        s1 = mum(rd8(p + 16) ^ k2, rd8(p + 24) ^ s1);
        s2 = mum(rd8(p + 32) ^ k3, rd8(p + 40) ^ s2);
        p += 48;
        i -= 48;
      } while (i > 48);
      seed ^= s1 ^ s2;
    }
    while (i > 16) {
      seed = mum(rd8(p) ^ k1, rd8(p + 8) ^ seed);
      p += 16;
      i -= 16;
    }
    a = rd8(p + i - 16);
    b = rd8(p + i - 8);
  }
  return mum(k1 ^ n, mum(a ^ k1, b ^ seed));
}

// -- character classes --------------------------------------------------------

struct char_table {
  bool hex[256] = {};
  constexpr char_table() {
    for (int c = '0'; c <= '9'; ++c)
      hex[c] = true;
    for (int c = 'a'; c <= 'f'; ++c)
      hex[c] = true;
    for (int c = 'A'; c <= 'F'; ++c)
      hex[c] = true;
  }
};

constexpr char_table chars;

inline bool is_hex(char c) {
  return chars.hex[static_cast<uint8_t>(c)];
}

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

inline bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

/// Equality of two byte ranges of length `n`, inlined: most keys compared
/// are short and equal, where a call to memcmp costs more than the compare.
inline bool equal_bytes(const char* a, const char* b, size_t n) {
#if defined(__SSE2__)
  if (n >= 16) {
    auto eq16 = [](const char* x, const char* y) {
      auto vx = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
      auto vy = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y));
      return _mm_movemask_epi8(_mm_cmpeq_epi8(vx, vy)) == 0xffff;
    };
    for (size_t i = 0; i + 16 <= n; i += 16)
      if (!eq16(a + i, b + i))
        return false;
    return eq16(a + n - 16, b + n - 16);
  }
#endif
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8)
      if (rd8(a + i) != rd8(b + i))
        return false;
    return rd8(a + n - 8) == rd8(b + n - 8);
  }
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i])
      return false;
  return true;
}

#if defined(__SSE2__)
/// Bit i set where p[i] is '\n', for the 64 bytes at p.
inline uint64_t newline_mask(const char* p) {
  auto nl = _mm_set1_epi8('\n');
  auto m = [&](int i) {
    auto v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
    return static_cast<uint64_t>(
        static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl))));
  };
  return m(0) | (m(1) << 16) | (m(2) << 32) | (m(3) << 48);
}
#endif

/// Skips the address of a frame line [b, e) (b[0] is the indent): returns
/// the first byte of the symbol, or null if there is no `<hex> ` address.
inline const char* skip_address(const char* b, const char* e) {
#if defined(__SSE2__)
  // perf prints "\t%16lx ": check the 16 bytes at once.
  if (e - b >= 18 && b[17] == ' ' && is_hex(b[16])) {
    auto x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 1));
    auto in = [x](char lo, char hi) {
      return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(lo - 1)),
                           _mm_cmplt_epi8(x, _mm_set1_epi8(hi + 1)));
    };
    auto spaces = _mm_cmpeq_epi8(x, _mm_set1_epi8(' '));
    auto hex
        = _mm_or_si128(_mm_or_si128(in('0', '9'), in('a', 'f')), in('A', 'F'));
    auto ok
        = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(hex, spaces)));
    auto sp = static_cast<unsigned>(_mm_movemask_epi8(spaces));
    // All hex or space, and the spaces (if any) only before the digits.
    if (ok == 0xffff && (sp & (sp + 1)) == 0)
      return b + 18;
  }
#endif
  const char* p = b + 1;
  while (p < e && *p == ' ')
    ++p;
  const char* h = p;
  while (p < e && is_hex(*p))
    ++p;
  if (p == h || p == e || *p != ' ')
    return nullptr;
  return p + 1;
}

// -- open addressing ----------------------------------------------------------

/// One slot of an open-addressing table: the full hash and the ID + 1 of the
/// entry (0: empty). Probing compares hashes first, keys only on a match.
struct slot {
  uint64_t hash;
  uint32_t id;
};

/// Linear-probing index over entries stored elsewhere; grows at half load.
class id_index {
public:
  id_index() {
    reset();
  }

  void reset() {
    slots_.assign(16, slot{0, 0});
    mask_ = 15;
    size_ = 0;
  }

  /// Returns the ID of the entry with hash `h` for which `eq(id)` holds, or
  /// inserts `next_id` and returns it (the caller then stores the entry).
  template <class Eq>
  uint32_t find_or_insert(uint64_t h, uint32_t next_id, Eq&& eq,
                          bool& inserted) {
    size_t i = h & mask_;
    for (;;) {
      auto& s = slots_[i];
      if (s.id == 0)
        break;
      if (s.hash == h && eq(s.id - 1)) {
        inserted = false;
        return s.id - 1;
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = slot{h, next_id + 1};
    inserted = true;
    if (++size_ * 2 > slots_.size())
      grow();
    return next_id;
  }

  /// Starts loading the first slot of hash `h` into the cache.
  void prefetch(uint64_t h) const {
    __builtin_prefetch(&slots_[h & mask_]);
  }

private:
  void grow() {
    std::vector<slot> old(slots_.size() * 2, slot{0, 0});
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (auto& s : old) {
      if (s.id == 0)
        continue;
      size_t i = s.hash & mask_;
      while (slots_[i].id != 0)
        i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

/// Open-addressing map from byte strings to 32-bit values, built for the
/// hottest lookup (frame texts): a slot holds the hash, where the key is and
/// the value, and a key is stored as [uint32 length][bytes], so a hit
/// touches one slot and the key's bytes and nothing else.
class text_index {
public:
  text_index() {
    reset();
  }

  void reset() {
    slots_.assign(1024, tslot{0, 0, 0});
    mask_ = 1023;
    size_ = 0;
    text_.clear();
  }

  /// The value stored for the key [p, p + n) of hash `h`, or null.
  const uint32_t* find(uint64_t h, const char* p, uint32_t n) const {
    size_t i = h & mask_;
    for (;;) {
      auto& s = slots_[i];
      if (s.off1 == 0)
        return nullptr;
      if (s.hash == h) {
        const char* k = text_.data() + s.off1 - 1;
        uint32_t len;
        std::memcpy(&len, k, sizeof len);
        if (len == n && equal_bytes(k + sizeof len, p, n))
          return &s.value;
      }
      i = (i + 1) & mask_;
    }
  }

  /// Stores a key known to be absent. False if the key store is full
  /// (4 GB), in which case nothing is stored.
  bool insert(uint64_t h, const char* p, uint32_t n, uint32_t value) {
    if (text_.size() + sizeof n + n >= UINT32_MAX)
      return false;
    auto off1 = static_cast<uint32_t>(text_.size() + 1);
    text_.append(reinterpret_cast<const char*>(&n), sizeof n);
    text_.append(p, n);
    place(tslot{h, off1, value});
    if (++size_ * 2 > slots_.size()) {
      std::vector<tslot> old(slots_.size() * 2, tslot{0, 0, 0});
      old.swap(slots_);
      mask_ = slots_.size() - 1;
      for (auto& s : old)
        if (s.off1 != 0)
          place(s);
    }
    return true;
  }

  /// Starts loading the first slot of hash `h` into the cache.
  void prefetch(uint64_t h) const {
    __builtin_prefetch(&slots_[h & mask_]);
  }

  /// Once the slot of `h` is cached: starts loading the key it points to,
  /// if its hash matches (the usual case of a hit at the first slot).
  void prefetch_key(uint64_t h) const {
    auto& s = slots_[h & mask_];
    if (s.off1 != 0 && s.hash == h) {
      const char* k = text_.data() + s.off1 - 1;
      __builtin_prefetch(k);
      __builtin_prefetch(k + 64);
    }
  }

private:
  struct tslot {
    uint64_t hash;
    uint32_t off1; // offset of the key in text_ + 1; 0: empty
    uint32_t value;
  };

  void place(const tslot& s) {
    size_t i = s.hash & mask_;
    while (slots_[i].off1 != 0)
      i = (i + 1) & mask_;
    slots_[i] = s;
  }

  std::vector<tslot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::string text_;
};

/// Appends `name` to `out` made safe for a folded line.
void append_sanitized(std::string& out, std::string_view name) {
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == ';')
      out += '_';
    else if (u < 0x20 || u == 0x7f)
      out += ' ';
    else
      out += c;
  }
}

/// The basename of a dso for `(<dso>)` frames: after the last '/', without
/// a " (deleted)" tag and without enclosing brackets.
std::string_view dso_basename(std::string_view dso) {
  constexpr std::string_view deleted = " (deleted)";
  if (dso.size() > deleted.size()
      && dso.substr(dso.size() - deleted.size()) == deleted)
    dso.remove_suffix(deleted.size());
  if (auto slash = dso.rfind('/');
      slash != std::string_view::npos && slash + 1 < dso.size())
    dso.remove_prefix(slash + 1);
  if (dso.size() >= 2 && dso.front() == '[' && dso.back() == ']')
    dso = dso.substr(1, dso.size() - 2);
  return dso;
}

constexpr std::string_view unknown = "[unknown]";

} // namespace

bool java_jit_frame(std::string_view symbol, std::string_view dso) {
  // The dso: ".../perf-<digits>.map".
  auto base = dso.substr(dso.rfind('/') + 1);
  constexpr std::string_view prefix = "perf-", suffix = ".map";
  if (base.size() <= prefix.size() + suffix.size()
      || base.substr(0, prefix.size()) != prefix
      || base.substr(base.size() - suffix.size()) != suffix)
    return false;
  auto digits
      = base.substr(prefix.size(), base.size() - prefix.size() - suffix.size());
  if (digits.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  // The symbol: "R C.M(P)".
  auto plain = [](std::string_view s) {
    return !s.empty() && s.find_first_of(" ()") == std::string_view::npos;
  };
  auto space = symbol.find(' ');
  if (space == std::string_view::npos || !plain(symbol.substr(0, space)))
    return false;
  auto open = symbol.find('(', space + 1);
  if (open == std::string_view::npos || symbol.back() != ')'
      || open + 1 > symbol.size() - 1)
    return false;
  auto name = symbol.substr(space + 1, open - space - 1);
  auto params = symbol.substr(open + 1, symbol.size() - open - 2);
  auto dot = name.rfind('.');
  return plain(name) && dot != std::string_view::npos && dot > 0
         && dot + 1 < name.size()
         && params.find_first_of("()") == std::string_view::npos;
}

std::string sanitize_frame(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  append_sanitized(out, name);
  return out;
}

// -- the converter ------------------------------------------------------------

struct perf_collapser::impl {
  explicit impl(collapse_limits lim) : limits(lim) {}

  // -- state of the parser

  enum class state : uint8_t {
    /// Between records: expecting a header, a comment or a blank line.
    between,
    /// Inside a record with a valid header: collecting frames.
    in_record,
    /// Inside a malformed record: ignoring lines up to its end.
    skipping,
  };

  collapse_limits limits;
  uint64_t samples = 0;
  uint64_t malformed = 0;
  uint64_t bytes = 0;
  state st = state::between;
  /// An incomplete line carried to the next feed().
  std::string carry;
  /// Inside a line longer than the limit: drop input up to the next '\n'.
  bool skip_line = false;

  // The current record.
  int32_t pid = 0;
  int32_t tid = 0;
  uint32_t comm_id = 0;
  std::vector<uint32_t> cur;

  // -- frames: (symbol, dso) -> ID

  /// Where a frame's symbol and dso are in `frame_text`.
  struct frame_rec {
    size_t off;
    uint32_t sym_len;
    uint32_t dso_len;
  };
  std::string frame_text;
  std::vector<frame_rec> frames;
  id_index frame_index;

  // -- frame texts as printed (after the address) -> canonical frame ID

  text_index raw_index;

  // -- comms: text -> ID

  std::string comm_text;
  std::vector<std::pair<size_t, uint32_t>> comms;
  id_index comm_index;

  // -- stacks: (pid, comm, frame IDs) -> count

  /// Where a stack's key is in `stack_words`: [pid, comm, n, frames...].
  struct stack_rec {
    size_t off;
    uint64_t count;
    /// Seen from the process's main thread (tid == pid).
    bool main;
  };
  std::vector<uint32_t> stack_words;
  std::vector<stack_rec> stacks;
  id_index stack_index;

  // -- latency hiding

  /// A line of the current batch, with what the batch loop precomputed.
  struct line_ref {
    const char* b;
    const char* e;
    /// First byte of the symbol of a frame line, or null.
    const char* sym;
    uint64_t hash;
  };
  static constexpr size_t batch_size = 32;
  line_ref batch[batch_size];
  size_t batch_used = 0;

  /// A closed record waiting to be counted: its stack's slot is being
  /// prefetched meanwhile.
  struct pending_stack {
    int32_t pid = 0;
    uint32_t comm = 0;
    bool main = false;
    uint64_t hash = 0;
    std::vector<uint32_t> frames;
  };
  static constexpr size_t ring_size = 8;
  pending_stack ring[ring_size];
  size_t ring_head = 0;
  size_t ring_used = 0;

  // -- input

  void feed(const char* p, const char* end) {
    bytes += static_cast<uint64_t>(end - p);
    if (skip_line) {
      auto nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr)
        return;
      skip_line = false;
      p = nl + 1;
    }
    if (!carry.empty()) {
      auto nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr) {
        if (carry.size() + static_cast<size_t>(end - p) > limits.max_line) {
          carry.clear();
          skip_line = true;
          drop_record();
        } else {
          carry.append(p, end);
        }
        return;
      }
      carry.append(p, nl);
      process_line(carry.data(), carry.data() + carry.size());
      carry.clear();
      p = nl + 1;
    }
    // Newlines are found 64 bytes at a time (a bit mask per block), lines
    // are collected in batches (see run_batch), the tail of the chunk that
    // is shorter than a block is searched with memchr.
    const char* line = p;
    const char* q = p;
#if defined(__SSE2__)
    while (end - q >= 64) {
      uint64_t m = newline_mask(q);
      while (m != 0) {
        const char* nl = q + __builtin_ctzll(m);
        emit(line, nl);
        line = nl + 1;
        m &= m - 1;
      }
      q += 64;
    }
#endif
    for (;;) {
      auto nl = static_cast<const char*>(std::memchr(q, '\n', end - q));
      if (nl == nullptr)
        break;
      emit(line, nl);
      line = q = nl + 1;
    }
    run_batch();
    p = line;
    flush_stacks();
    if (p < end) {
      if (static_cast<size_t>(end - p) > limits.max_line) {
        skip_line = true;
        drop_record();
      } else {
        carry.assign(p, end);
      }
    }
  }

  /// Adds the line [b, e) to the batch. For a frame line, skips the
  /// address, hashes the text and prefetches its slot in the frame table.
  void emit(const char* b, const char* e) {
    auto& l = batch[batch_used++];
    l.b = b;
    l.e = e;
    l.sym = nullptr;
    if (b < e && *b == '\t' && static_cast<size_t>(e - b) <= limits.max_line) {
      l.sym = skip_address(b, e);
      if (l.sym != nullptr) {
        l.hash = hash_bytes(l.sym, static_cast<size_t>(e - l.sym), 7);
        raw_index.prefetch(l.hash);
      }
    }
    if (batch_used == batch_size)
      run_batch();
  }

  /// Processes the batch: the slots prefetched by emit() have arrived by
  /// now, so first the keys they point to are prefetched, then the lines
  /// are processed in order. The table lookups of a batch thus overlap in
  /// memory instead of waiting one after the other.
  void run_batch() {
    for (size_t i = 0; i < batch_used; ++i)
      if (batch[i].sym != nullptr)
        raw_index.prefetch_key(batch[i].hash);
    for (size_t i = 0; i < batch_used; ++i) {
      auto& l = batch[i];
      if (l.sym != nullptr && st == state::in_record)
        add_frame_at(l.sym, l.e, l.hash);
      else
        process_line(l.b, l.e, l.sym, l.hash);
    }
    batch_used = 0;
  }

  void finish() {
    skip_line = false;
    if (!carry.empty()) {
      std::string last;
      last.swap(carry);
      finish_line(last.data(), last.data() + last.size());
    }
    end_record();
    flush_stacks();
  }

  /// An unterminated last line: used only if it is visibly complete.
  void finish_line(const char* b, const char* e) {
    if (b < e && (*b == '\t' || *b == ' ')) {
      // A frame line is complete when it ends with its dso group; a cut one
      // is dropped and the record keeps its complete frames.
      if (st == state::in_record && e[-1] == ')')
        process_line(b, e);
      return;
    }
    // A header cut anywhere may still look like a header: drop it.
    if (std::all_of(b, e, is_blank))
      return;
    end_record();
    drop_record();
  }

  /// Counts the record being read (or a stray line) as malformed, once, and
  /// skips to the next blank line.
  void drop_record() {
    if (st != state::skipping)
      ++malformed;
    st = state::skipping;
  }

  // -- lines

  void process_line(const char* b, const char* e) {
    process_line(b, e, nullptr, 0);
  }

  /// Processes the line [b, e). For a frame line, `sym` and `hash` may hold
  /// what the batch loop computed already (its symbol start and text hash).
  void process_line(const char* b, const char* e, const char* sym,
                    uint64_t hash) {
    if (static_cast<size_t>(e - b) > limits.max_line) {
      drop_record();
      return;
    }
    if (b == e) {
      end_record();
      return;
    }
    if (*b == '\t' || *b == ' ') {
      if (st == state::in_record
          && (sym != nullptr ? add_frame_at(sym, e, hash) : add_frame(b, e)))
        return;
      if (std::all_of(b, e, is_blank)) {
        end_record();
        return;
      }
    }
    // Not a frame: maybe the next header (perf without a blank line).
    if (start_record(b, e))
      return;
    if (st == state::between && *b == '#')
      return; // perf's comments
    // A stray line, or the end of a broken record (a frame line outside any
    // record, a header that does not parse).
    drop_record();
  }

  /// Parses a frame line into the current record. False if it is not one.
  /// The text after the address ("symbol+0xoff (dso)") is looked up as is;
  /// only a text seen for the first time is parsed into its canonical frame.
  bool add_frame(const char* b, const char* e) {
    const char* p = skip_address(b, e);
    if (p == nullptr)
      return false;
    return add_frame_at(p, e, hash_bytes(p, static_cast<size_t>(e - p), 7));
  }

  /// Adds the frame whose text after the address is [p, e), of hash `h`.
  bool add_frame_at(const char* p, const char* e, uint64_t h) {
    if (cur.size() >= limits.max_frames) {
      ++malformed;
      st = state::skipping;
      return true;
    }
    auto n = static_cast<uint32_t>(e - p);
    if (auto v = raw_index.find(h, p, n)) {
      cur.push_back(*v);
      return true;
    }
    auto frame = canonical(p, e);
    raw_index.insert(h, p, n, frame);
    cur.push_back(frame);
    return true;
  }

  /// The canonical frame of the text [p, e) after a frame's address.
  uint32_t canonical(const char* p, const char* e) {
    const char* sym_e = e;
    const char* dso_b = e;
    const char* dso_e = e;
    if (e - p >= 2 && e[-1] == ')') {
      const char* lp = find_dso_open(p, e);
      if (lp != nullptr) {
        dso_b = lp + 1;
        dso_e = e - 1;
        sym_e = lp;
      }
    }
    while (sym_e > p && sym_e[-1] == ' ')
      --sym_e;
    // Strip a trailing +0x<hex> offset.
    const char* q = sym_e;
    while (q > p && is_hex(q[-1]))
      --q;
    if (q < sym_e && q - p >= 3 && q[-1] == 'x' && q[-2] == '0' && q[-3] == '+')
      sym_e = q - 3;
    return intern_frame(p, static_cast<size_t>(sym_e - p), dso_b,
                        static_cast<size_t>(dso_e - dso_b));
  }

  /// The '(' that opens the group ending at e[-1], or null.
  static const char* find_dso_open(const char* p, const char* e) {
    auto lp = static_cast<const char*>(memrchr(p, '(', e - 1 - p));
    if (lp == nullptr)
      return nullptr;
    if (std::memchr(lp + 1, ')', e - 1 - (lp + 1)) == nullptr)
      return lp;
    // A ')' inside the candidate: the group nests, match from the end.
    int depth = 0;
    for (const char* c = e - 1; c >= p; --c) {
      if (*c == ')') {
        ++depth;
      } else if (*c == '(') {
        if (--depth == 0)
          return c;
      }
    }
    return lp;
  }

  uint32_t intern_frame(const char* sym, size_t sym_len, const char* dso,
                        size_t dso_len) {
    uint64_t h = hash_bytes(dso, dso_len, hash_bytes(sym, sym_len, 0));
    bool inserted = false;
    auto next = static_cast<uint32_t>(frames.size());
    auto id = frame_index.find_or_insert(
        h, next,
        [&](uint32_t i) {
          auto& f = frames[i];
          return f.sym_len == sym_len && f.dso_len == dso_len
                 && std::memcmp(frame_text.data() + f.off, sym, sym_len) == 0
                 && std::memcmp(frame_text.data() + f.off + sym_len, dso,
                                dso_len)
                        == 0;
        },
        inserted);
    if (inserted) {
      frames.push_back(frame_rec{frame_text.size(),
                                 static_cast<uint32_t>(sym_len),
                                 static_cast<uint32_t>(dso_len)});
      frame_text.append(sym, sym_len);
      frame_text.append(dso, dso_len);
    }
    return id;
  }

  uint32_t intern_comm(const char* b, size_t n) {
    uint64_t h = hash_bytes(b, n, 1);
    bool inserted = false;
    auto next = static_cast<uint32_t>(comms.size());
    auto id = comm_index.find_or_insert(
        h, next,
        [&](uint32_t i) {
          auto& c = comms[i];
          return c.second == n && equal_bytes(comm_text.data() + c.first, b, n);
        },
        inserted);
    if (inserted) {
      comms.emplace_back(comm_text.size(), static_cast<uint32_t>(n));
      comm_text.append(b, n);
    }
    return id;
  }

  // -- records

  /// Parses `pid` or `pid/tid` (each maybe negative) in [b, e).
  static bool parse_pid_token(const char* b, const char* e, int32_t& pid,
                              int32_t& tid) {
    auto num = [](const char*& p, const char* end, int32_t& out) {
      bool neg = false;
      if (p < end && *p == '-') {
        neg = true;
        ++p;
      }
      const char* start = p;
      int64_t v = 0;
      while (p < end && is_digit(*p)) {
        v = v * 10 + (*p - '0');
        if (v > INT32_MAX)
          return false;
        ++p;
      }
      if (p == start)
        return false;
      out = static_cast<int32_t>(neg ? -v : v);
      return true;
    };
    const char* p = b;
    if (!num(p, e, pid))
      return false;
    if (p == e) {
      tid = pid;
      return true;
    }
    if (*p != '/')
      return false;
    ++p;
    return num(p, e, tid) && p == e;
  }

  /// True if [b, e) is `[digits]`.
  static bool is_cpu_token(const char* b, const char* e) {
    if (e - b < 3 || *b != '[' || e[-1] != ']')
      return false;
    return std::all_of(b + 1, e - 1, is_digit);
  }

  /// True if [b, e) is `digits.digits:`.
  static bool is_time_token(const char* b, const char* e) {
    if (e - b < 4 || e[-1] != ':')
      return false;
    const char* p = b;
    while (p < e && is_digit(*p))
      ++p;
    if (p == b || p == e || *p != '.')
      return false;
    const char* f = ++p;
    while (p < e && is_digit(*p))
      ++p;
    return p > f && p == e - 1;
  }

  /// Parses a header line and starts a record. False if it is not one.
  ///
  /// The header is read from the right, where perf puts its own fields, so
  /// that a comm (which the process chooses) cannot pose as them: the anchor
  /// is the last `time:` token (or, without one, the last `[cpu]` token);
  /// before it an optional `[cpu]`, then the pid/tid token; the comm is
  /// everything before that. A comm like `x 1/1 [000] 1.5:` stays the comm.
  bool start_record(const char* b, const char* e) {
    // The token ending at or before `p` (blanks skipped); empty at the start.
    auto prev_token = [b](const char*& p, const char*& tb) {
      while (p > b && is_blank(p[-1]))
        --p;
      const char* te = p;
      while (p > b && !is_blank(p[-1]))
        --p;
      tb = p;
      return te;
    };
    // The anchor: the last time token, else the last cpu token.
    const char* anchor = nullptr;
    bool anchor_is_time = false;
    const char* cpu_anchor = nullptr;
    for (const char* p = e; p > b;) {
      const char* tb = nullptr;
      const char* te = prev_token(p, tb);
      if (tb == te)
        break;
      if (is_time_token(tb, te)) {
        anchor = tb;
        anchor_is_time = true;
        break;
      }
      if (cpu_anchor == nullptr && is_cpu_token(tb, te))
        cpu_anchor = tb;
    }
    if (anchor == nullptr)
      anchor = cpu_anchor;
    if (anchor == nullptr)
      return false;
    const char* p = anchor;
    const char* tb = nullptr;
    const char* te = prev_token(p, tb);
    if (anchor_is_time && is_cpu_token(tb, te))
      te = prev_token(p, tb);
    int32_t new_pid = 0;
    int32_t new_tid = 0;
    if (tb == te || !parse_pid_token(tb, te, new_pid, new_tid))
      return false;
    // A header: the comm is everything before the token, trimmed.
    end_record();
    const char* cb = b;
    const char* ce = tb;
    while (cb < ce && is_blank(*cb))
      ++cb;
    while (ce > cb && is_blank(ce[-1]))
      --ce;
    pid = new_pid;
    tid = new_tid;
    comm_id = intern_comm(cb, static_cast<size_t>(ce - cb));
    cur.clear();
    st = state::in_record;
    return true;
  }

  /// Closes the current record: counts its stack if it is a valid one.
  void end_record() {
    if (st == state::in_record)
      count_stack();
    st = state::between;
  }

  void count_stack() {
    ++samples;
    uint64_t seed
        = (static_cast<uint64_t>(static_cast<uint32_t>(pid)) << 32) | comm_id;
    uint64_t h = hash_bytes(reinterpret_cast<const char*>(cur.data()),
                            cur.size() * sizeof(uint32_t), seed);
    stack_index.prefetch(h);
    if (ring_used == ring_size)
      resolve_oldest();
    auto& ps = ring[(ring_head + ring_used) % ring_size];
    ++ring_used;
    ps.pid = pid;
    ps.comm = comm_id;
    ps.main = tid == pid;
    ps.hash = h;
    ps.frames.swap(cur);
    cur.clear();
  }

  /// Counts every pending stack.
  void flush_stacks() {
    while (ring_used > 0)
      resolve_oldest();
  }

  void resolve_oldest() {
    auto& ps = ring[ring_head];
    ring_head = (ring_head + 1) % ring_size;
    --ring_used;
    auto n = ps.frames.size();
    bool inserted = false;
    auto next = static_cast<uint32_t>(stacks.size());
    auto id = stack_index.find_or_insert(
        ps.hash, next,
        [&](uint32_t i) {
          const uint32_t* w = stack_words.data() + stacks[i].off;
          return w[0] == static_cast<uint32_t>(ps.pid) && w[1] == ps.comm
                 && w[2] == n
                 && equal_bytes(reinterpret_cast<const char*>(w + 3),
                                reinterpret_cast<const char*>(ps.frames.data()),
                                n * sizeof(uint32_t));
        },
        inserted);
    if (inserted) {
      stacks.push_back(stack_rec{stack_words.size(), 1, ps.main});
      stack_words.push_back(static_cast<uint32_t>(ps.pid));
      stack_words.push_back(ps.comm);
      stack_words.push_back(static_cast<uint32_t>(n));
      stack_words.insert(stack_words.end(), ps.frames.begin(), ps.frames.end());
    } else {
      ++stacks[id].count;
      stacks[id].main |= ps.main;
    }
  }

  // -- results

  std::string_view comm_view(uint32_t id) const {
    auto& c = comms[id];
    return {comm_text.data() + c.first, c.second};
  }

  std::string render_comm(uint32_t id) const {
    auto v = comm_view(id);
    return v.empty() ? std::string{unknown} : sanitize_frame(v);
  }

  std::string render_frame(uint32_t id) const {
    auto& f = frames[id];
    std::string_view sym{frame_text.data() + f.off, f.sym_len};
    std::string_view dso{frame_text.data() + f.off + f.sym_len, f.dso_len};
    std::string out;
    if (sym.empty() || (sym == unknown && (dso.empty() || dso == unknown))) {
      out = unknown;
    } else if (sym == unknown) {
      out += '(';
      append_sanitized(out, dso_basename(dso));
      out += ')';
    } else {
      append_sanitized(out, sym);
    }
    if (dso.find("kernel") != std::string_view::npos
        || dso.find("vmlinux") != std::string_view::npos)
      out += "_[k]";
    return out;
  }

  /// The rendered names of every frame and comm, by ID.
  void render_names(std::vector<std::string>& names,
                    std::vector<std::string>& comm_names) const {
    names.resize(frames.size());
    for (uint32_t i = 0; i < frames.size(); ++i)
      names[i] = render_frame(i);
    comm_names.resize(comms.size());
    for (uint32_t i = 0; i < comms.size(); ++i)
      comm_names[i] = render_comm(i);
  }

  /// Renders the stack at `off` in `stack_words` without its pid.
  std::string render_stack(size_t off, const std::vector<std::string>& names,
                           const std::vector<std::string>& comm_names) const {
    const uint32_t* w = stack_words.data() + off;
    size_t len = comm_names[w[1]].size();
    for (uint32_t i = 0; i < w[2]; ++i)
      len += 1 + names[w[3 + i]].size();
    std::string line;
    line.reserve(len);
    line += comm_names[w[1]];
    for (uint32_t i = w[2]; i > 0; --i) {
      line += ';';
      line += names[w[3 + i - 1]];
    }
    return line;
  }

  static void sort_and_merge(std::vector<stack_count>& xs) {
    std::sort(xs.begin(), xs.end(),
              [](const stack_count& a, const stack_count& b) {
                return a.stack < b.stack;
              });
    size_t out = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (out > 0 && xs[out - 1].stack == xs[i].stack) {
        xs[out - 1].count += xs[i].count;
      } else {
        if (out != i)
          xs[out] = std::move(xs[i]);
        ++out;
      }
    }
    xs.resize(out);
  }

  std::vector<stack_count> merged() const {
    // Aggregate across pids on IDs first: (comm, frames) without the pid.
    std::vector<std::pair<size_t, uint64_t>> groups;
    id_index index;
    for (auto& s : stacks) {
      const uint32_t* w = stack_words.data() + s.off + 1;
      size_t bytes = (size_t{w[1]} + 2) * sizeof(uint32_t);
      auto key = reinterpret_cast<const char*>(w);
      bool inserted = false;
      auto id = index.find_or_insert(
          hash_bytes(key, bytes, 3), static_cast<uint32_t>(groups.size()),
          [&](uint32_t i) {
            const uint32_t* g = stack_words.data() + groups[i].first + 1;
            return g[1] == w[1]
                   && equal_bytes(reinterpret_cast<const char*>(g), key, bytes);
          },
          inserted);
      if (inserted)
        groups.emplace_back(s.off, s.count);
      else
        groups[id].second += s.count;
    }
    std::vector<std::string> names;
    std::vector<std::string> comm_names;
    render_names(names, comm_names);
    std::vector<stack_count> out;
    out.reserve(groups.size());
    for (auto& [off, count] : groups)
      out.push_back(stack_count{render_stack(off, names, comm_names), count});
    sort_and_merge(out);
    return out;
  }

  /// The frames that are Java methods of a JIT map (java_jit_frame).
  std::vector<bool> java_frames() const {
    std::vector<bool> out(frames.size(), false);
    for (uint32_t i = 0; i < frames.size(); ++i) {
      auto& f = frames[i];
      std::string_view sym{frame_text.data() + f.off, f.sym_len};
      std::string_view dso{frame_text.data() + f.off + f.sym_len, f.dso_len};
      out[i] = java_jit_frame(sym, dso);
    }
    return out;
  }

  std::vector<process_stacks>
  per_process(const std::function<bool(int32_t)>& is_jvm) const {
    std::vector<std::string> names;
    std::vector<std::string> comm_names;
    render_names(names, comm_names);
    // The names of a JVM's stacks: its Java frames with "_[j]".
    std::vector<bool> java;
    std::vector<std::string> jvm_names;
    if (is_jvm) {
      java = java_frames();
      if (std::find(java.begin(), java.end(), true) != java.end()) {
        jvm_names = names;
        for (uint32_t i = 0; i < java.size(); ++i)
          if (java[i])
            jvm_names[i] += "_[j]";
      } else {
        java.clear();
      }
    }
    auto has_java = [&](uint32_t stack) {
      const uint32_t* w = stack_words.data() + stacks[stack].off;
      for (uint32_t k = 0; k < w[2]; ++k)
        if (java[w[3 + k]])
          return true;
      return false;
    };
    // Stack indices ordered by pid, then by first appearance.
    std::vector<uint32_t> order(stacks.size());
    for (uint32_t i = 0; i < order.size(); ++i)
      order[i] = i;
    auto pid_of = [this](uint32_t i) {
      return static_cast<int32_t>(stack_words[stacks[i].off]);
    };
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return pid_of(a) < pid_of(b);
    });
    std::vector<process_stacks> out;
    for (size_t i = 0; i < order.size();) {
      int32_t p = pid_of(order[i]);
      process_stacks ps;
      ps.pid = p;
      // The comm of the main thread if sampled, else of the first sample.
      uint32_t comm = stack_words[stacks[order[i]].off + 1];
      for (size_t k = i; k < order.size() && pid_of(order[k]) == p; ++k) {
        if (stacks[order[k]].main) {
          comm = stack_words[stacks[order[k]].off + 1];
          break;
        }
      }
      ps.comm = render_comm(comm);
      bool jvm = false;
      if (!java.empty()) {
        for (size_t k = i; k < order.size() && pid_of(order[k]) == p; ++k)
          if (has_java(order[k])) {
            jvm = is_jvm(p);
            break;
          }
      }
      auto& frame_names = jvm ? jvm_names : names;
      for (; i < order.size() && pid_of(order[i]) == p; ++i)
        ps.stacks.push_back(stack_count{
            render_stack(stacks[order[i]].off, frame_names, comm_names),
            stacks[order[i]].count});
      sort_and_merge(ps.stacks);
      out.push_back(std::move(ps));
    }
    return out;
  }
};

perf_collapser::perf_collapser() : perf_collapser(collapse_limits{}) {}

perf_collapser::perf_collapser(collapse_limits limits)
    : impl_(std::make_unique<impl>(limits)) {}

perf_collapser::~perf_collapser() = default;

void perf_collapser::feed(std::string_view chunk) {
  if (!chunk.empty())
    impl_->feed(chunk.data(), chunk.data() + chunk.size());
}

void perf_collapser::finish() {
  impl_->finish();
}

collapse_stats perf_collapser::stats() const {
  collapse_stats s;
  s.samples = impl_->samples;
  s.malformed = impl_->malformed;
  s.bytes = impl_->bytes;
  s.unique_frames = impl_->frames.size();
  s.unique_stacks = impl_->stacks.size();
  return s;
}

uint64_t perf_collapser::samples() const {
  return impl_->samples;
}

uint64_t perf_collapser::malformed() const {
  return impl_->malformed;
}

size_t perf_collapser::unique_stacks() const {
  return impl_->stacks.size();
}

std::vector<process_stacks> perf_collapser::per_process() const {
  return impl_->per_process({});
}

std::vector<process_stacks>
perf_collapser::per_process(const std::function<bool(int32_t)>& is_jvm) const {
  return impl_->per_process(is_jvm);
}

std::vector<stack_count> perf_collapser::merged() const {
  return impl_->merged();
}

void perf_collapser::write_folded(std::string& out) const {
  for (auto& s : impl_->merged()) {
    out += s.stack;
    out += ' ';
    out += std::to_string(s.count);
    out += '\n';
  }
}

void perf_collapser::clear() {
  auto limits = impl_->limits;
  impl_ = std::make_unique<impl>(limits);
}

} // namespace gpa::format
