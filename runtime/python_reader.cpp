#include "runtime/python_reader.hpp"
#include "runtime/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace gpa::rt {

// -- errors ------------------------------------------------------------------

const char* to_string(python_errc x) {
  switch (x) {
    case python_errc::not_python: return "not_python";
    case python_errc::unsupported_version: return "unsupported_version";
    case python_errc::no_symbols: return "no_symbols";
    case python_errc::process_gone: return "process_gone";
    case python_errc::permission_denied: return "permission_denied";
    case python_errc::torn_read: return "torn_read";
    case python_errc::io_error: return "io_error";
  }
  return "unknown";
}

std::string python_error::describe() const {
  return std::string(to_string(code)) + ": " + message;
}

namespace {

python_error err(python_errc code, std::string message) {
  return python_error{code, std::move(message)};
}

std::string hex(uint64_t x) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(x));
  return buf;
}

// -- files -------------------------------------------------------------------

/// Opens a regular file for reading, not through a final symlink, never
/// blocking on a FIFO; -1 with errno set else.
int open_regular(const std::string& path) {
  int fd = ::open(path.c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

/// Reads a /proc file (size 0 in stat) up to `max` bytes.
bool read_proc_file(const std::string& path, size_t max, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return false;
  fd_guard g{fd};
  out.clear();
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof(buf), max - out.size()));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  return true;
}

bool pread_all(int fd, void* buf, size_t len, uint64_t off) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    len -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return true;
}

// -- /proc/PID/maps ----------------------------------------------------------

struct mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;
  std::string path;
};

std::vector<mapping> parse_maps(const std::string& text) {
  std::vector<mapping> result;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos)
      eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    // start-end perms offset dev inode path
    unsigned long long start = 0, end = 0, off = 0, inode = 0;
    char perms[8] = {0};
    char dev[32] = {0};
    int consumed = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %31s %llu %n", &start, &end,
               perms, &off, dev, &inode, &consumed)
        < 6)
      continue;
    if (consumed <= 0 || static_cast<size_t>(consumed) >= line.size())
      continue;
    std::string path = line.substr(static_cast<size_t>(consumed));
    if (path.empty() || path[0] != '/')
      continue;
    const std::string deleted = " (deleted)";
    if (path.size() > deleted.size()
        && path.compare(path.size() - deleted.size(), deleted.size(), deleted)
               == 0)
      path.resize(path.size() - deleted.size());
    result.push_back(mapping{start, end, off, std::move(path)});
  }
  return result;
}

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// -- ELF ---------------------------------------------------------------------

struct elf_symbols {
  std::unordered_map<std::string, uint64_t> values;
  std::vector<Elf64_Phdr> loads;
};

/// Reads the program headers and the wanted symbols of a 64-bit ELF file.
bool read_elf(int fd, const std::vector<std::string>& wanted, elf_symbols& out,
              std::string& why) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    why = strerror(errno);
    return false;
  }
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  Elf64_Ehdr eh;
  if (file_size < sizeof(eh) || !pread_all(fd, &eh, sizeof(eh), 0)
      || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    why = "not an ELF file";
    return false;
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64
      || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    why = "not a 64-bit little-endian ELF file";
    return false;
  }
  // Program headers: the PT_LOAD segments, for the load bias.
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256
      || eh.e_phoff > file_size
      || eh.e_phnum * sizeof(Elf64_Phdr) > file_size - eh.e_phoff) {
    why = "bad program headers";
    return false;
  }
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  if (!ph.empty()
      && !pread_all(fd, ph.data(), ph.size() * sizeof(Elf64_Phdr),
                    eh.e_phoff)) {
    why = "cannot read program headers";
    return false;
  }
  for (auto& p : ph)
    if (p.p_type == PT_LOAD)
      out.loads.push_back(p);
  // Section headers: .dynsym and .symtab with their string tables.
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum > 65000
      || eh.e_shoff > file_size
      || eh.e_shnum * sizeof(Elf64_Shdr) > file_size - eh.e_shoff) {
    why = "bad section headers";
    return false;
  }
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  if (!sh.empty()
      && !pread_all(fd, sh.data(), sh.size() * sizeof(Elf64_Shdr),
                    eh.e_shoff)) {
    why = "cannot read section headers";
    return false;
  }
  constexpr uint64_t max_table = 256ull << 20;
  std::unordered_set<std::string> want(wanted.begin(), wanted.end());
  for (auto& s : sh) {
    if (s.sh_type != SHT_DYNSYM && s.sh_type != SHT_SYMTAB)
      continue;
    if (s.sh_link >= sh.size() || s.sh_entsize != sizeof(Elf64_Sym))
      continue;
    auto& strs = sh[s.sh_link];
    if (s.sh_size > max_table || strs.sh_size > max_table
        || s.sh_offset > file_size || s.sh_size > file_size - s.sh_offset
        || strs.sh_offset > file_size
        || strs.sh_size > file_size - strs.sh_offset)
      continue;
    std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
    std::string names(strs.sh_size, '\0');
    if (!pread_all(fd, syms.data(), syms.size() * sizeof(Elf64_Sym),
                   s.sh_offset)
        || !pread_all(fd, names.data(), names.size(), strs.sh_offset))
      continue;
    for (auto& sym : syms) {
      if (sym.st_name >= names.size() || sym.st_shndx == SHN_UNDEF
          || sym.st_value == 0)
        continue;
      const char* name = names.data() + sym.st_name;
      size_t len = strnlen(name, names.size() - sym.st_name);
      std::string n(name, len);
      if (want.count(n) != 0 && out.values.count(n) == 0)
        out.values.emplace(std::move(n), sym.st_value);
    }
  }
  return true;
}

/// The load bias of a file mapped as `maps` (its mappings) with segments
/// `loads`: the address of its virtual address 0.
bool load_bias(const std::vector<mapping>& maps,
               const std::vector<Elf64_Phdr>& loads, uint64_t& bias) {
  const mapping* first = nullptr;
  for (auto& m : maps)
    if (first == nullptr || m.offset < first->offset)
      first = &m;
  if (first == nullptr)
    return false;
  constexpr uint64_t page = 4096;
  for (auto& p : loads) {
    uint64_t seg_off = p.p_offset & ~(page - 1);
    if (first->offset >= seg_off && first->offset < p.p_offset + p.p_filesz) {
      uint64_t vaddr = (p.p_vaddr & ~(page - 1)) + (first->offset - seg_off);
      bias = first->start - vaddr;
      return true;
    }
  }
  return false;
}

/// "python3.9" / "libpython3.7m.so.1.0" -> 3, 9.
bool version_from_name(const std::string& name, int& major, int& minor) {
  auto pos = name.find("python");
  if (pos == std::string::npos)
    return false;
  const char* p = name.c_str() + pos + 6;
  if (!isdigit(static_cast<unsigned char>(p[0])) || p[1] != '.'
      || !isdigit(static_cast<unsigned char>(p[2])))
    return false;
  major = p[0] - '0';
  minor = 0;
  for (const char* q = p + 2;
       isdigit(static_cast<unsigned char>(*q)) && minor < 1000; ++q)
    minor = minor * 10 + (*q - '0');
  return true;
}

// -- memory ------------------------------------------------------------------

/// Reads `len` bytes at `addr` of `pid`; false with errno set else (EFAULT
/// for a partial read).
bool read_mem(int pid, uint64_t addr, void* buf, size_t len) {
  if (addr == 0 || addr + len < addr) {
    errno = EFAULT;
    return false;
  }
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n == static_cast<ssize_t>(len))
    return true;
  if (n >= 0)
    errno = EFAULT;
  return false;
}

template <class T>
T get(const unsigned char* block, int64_t off) {
  T v;
  std::memcpy(&v, block + off, sizeof(T));
  return v;
}

/// The size of a block that holds every field in `offs` (8 bytes each).
size_t block_size(std::initializer_list<int64_t> offs) {
  int64_t m = 0;
  for (auto o : offs)
    m = std::max(m, o + 8);
  return static_cast<size_t>(m);
}

} // namespace

// -- line tables -------------------------------------------------------------

int32_t python_line_lnotab(std::string_view table, int32_t first_line,
                           int64_t offset) {
  int64_t line = first_line;
  int64_t addr = 0;
  for (size_t i = 0; i + 1 < table.size(); i += 2) {
    addr += static_cast<unsigned char>(table[i]);
    if (addr > offset)
      break;
    line += static_cast<signed char>(table[i + 1]);
  }
  return static_cast<int32_t>(line);
}

int32_t python_line_310(std::string_view table, int32_t first_line,
                        int64_t offset) {
  // Pairs (start delta, line delta); a line delta of -128 means no line.
  int64_t line = first_line;
  int64_t start = 0;
  for (size_t i = 0; i + 1 < table.size(); i += 2) {
    int64_t end = start + static_cast<unsigned char>(table[i]);
    int ldelta = static_cast<signed char>(table[i + 1]);
    if (ldelta != -128)
      line += ldelta;
    if (offset >= start && offset < end)
      return ldelta == -128 ? 0 : static_cast<int32_t>(line);
    start = end;
  }
  return 0;
}

namespace {

bool read_varint(std::string_view t, size_t& i, uint64_t& out) {
  out = 0;
  unsigned shift = 0;
  while (i < t.size() && shift < 64) {
    auto b = static_cast<unsigned char>(t[i++]);
    out |= static_cast<uint64_t>(b & 63) << shift;
    shift += 6;
    if ((b & 64) == 0)
      return true;
  }
  return false;
}

bool read_svarint(std::string_view t, size_t& i, int64_t& out) {
  uint64_t u;
  if (!read_varint(t, i, u))
    return false;
  out = (u & 1) ? -static_cast<int64_t>(u >> 1) : static_cast<int64_t>(u >> 1);
  return true;
}

} // namespace

int32_t python_line_location(std::string_view t, int32_t first_line,
                             int64_t offset) {
  // Entries: a first byte 1CCCCLLL (code, length - 1 in code units), then
  // per code: 15 no location, 14 long form (svarint line delta, varint end
  // line delta, column + 1, end column + 1), 13 no column (svarint line
  // delta), 10-12 one-line form (line delta code - 10, two column bytes),
  // 0-9 short form (one column byte, same line).
  int64_t line = first_line;
  int64_t addr = 0;
  size_t i = 0;
  while (i < t.size()) {
    auto first = static_cast<unsigned char>(t[i++]);
    if ((first & 0x80) == 0)
      return 0;
    int code = (first >> 3) & 15;
    int64_t end = addr + ((first & 7) + 1) * 2;
    bool has_line = true;
    if (code == 15) {
      has_line = false;
    } else if (code == 14) {
      int64_t d;
      uint64_t skip;
      if (!read_svarint(t, i, d) || !read_varint(t, i, skip)
          || !read_varint(t, i, skip) || !read_varint(t, i, skip))
        return 0;
      line += d;
    } else if (code == 13) {
      int64_t d;
      if (!read_svarint(t, i, d))
        return 0;
      line += d;
    } else if (code >= 10) {
      line += code - 10;
      i += 2;
    } else {
      i += 1;
    }
    if (offset >= addr && offset < end)
      return has_line && line > 0 && line < INT32_MAX
                 ? static_cast<int32_t>(line)
                 : 0;
    addr = end;
  }
  return 0;
}

std::string python_decode_ucs(const unsigned char* data, size_t length,
                              int kind, size_t max) {
  std::string out;
  size_t n = std::min(length, max);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t c;
    if (kind == 1) {
      c = data[i];
    } else if (kind == 2) {
      uint16_t v;
      std::memcpy(&v, data + 2 * i, 2);
      c = v;
    } else {
      std::memcpy(&c, data + 4 * i, 4);
    }
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
      c = 0xfffd;
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// -- the reader --------------------------------------------------------------

struct python_reader::code_entry {
  uint64_t filename = 0;
  uint64_t name = 0;
  uint64_t linetable = 0;
  int32_t first_line = 0;
  int64_t code_units = 0;
  std::shared_ptr<const python_code> code;
  std::string table;
  /// offset -> line, for the offsets seen.
  std::unordered_map<int64_t, int32_t> lines;
};

python_reader::~python_reader() = default;

namespace {

constexpr uint8_t frame_owned_by_cstack = 3;

bool stat_ids(const std::string& path, uint64_t& dev, uint64_t& ino) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return false;
  dev = static_cast<uint64_t>(st.st_dev);
  ino = static_cast<uint64_t>(st.st_ino);
  return true;
}

} // namespace

/// Walks one sample; every failure returns a python_error. Reads are
/// batched: one process_vm_readv for the runtime, one per interpreter and
/// per thread state, then one for every thread's frame pointers, one for the
/// frame areas of 3.11+ (each thread's datastack chunk up to its newest
/// frame), one per level of the frames not found there, and one for all the
/// code objects.
class python_sampler {
public:
  python_sampler(python_reader& r, bool gil_holder_only)
      : r_(r), l_(r.layout_), gil_only_(gil_holder_only) {}

  python_result<std::vector<python_thread_stack>> run();

private:
  struct raw_frame {
    uint64_t code;
    int64_t lasti;
    uint64_t instr;
  };

  struct thread_walk {
    uint64_t tstate = 0;
    /// The next frame to read, 0 when done.
    uint64_t next = 0;
    uint64_t chunk = 0;
    uint64_t window_start = 0;
    std::vector<unsigned char> window;
    std::vector<raw_frame> raw;
    size_t steps = 0;
  };

  /// The error of a failed read or check: the process gone or changed
  /// (checked now), else a torn read.
  python_error fail(const std::string& what, uint64_t addr, int errnum);

  bool mem(uint64_t addr, void* buf, size_t len) {
    ++r_.reads_;
    return read_mem(r_.pid_, addr, buf, len);
  }

  bool read_ptr(uint64_t addr, uint64_t& out) {
    return mem(addr, &out, sizeof(out));
  }

  /// Reads every (local[i], remote[i]); on failure, `failed` is the first
  /// request not read and `errnum` the error (0: a short read).
  bool batch(std::vector<iovec>& local, std::vector<iovec>& remote,
             size_t& failed, int& errnum);

  /// Decodes the str at `addr`; false (why set) when it is not one.
  bool read_str(uint64_t addr, std::string& out, std::string& why);
  /// The bytes of the bytes object at `addr`.
  bool read_bytes(uint64_t addr, std::string& out, std::string& why);

  bool parse_frame(thread_walk& w, uint64_t addr, const unsigned char* b,
                   python_error& error);
  bool walk_all(std::vector<thread_walk>& walks, python_error& error);
  bool decode_all(std::vector<thread_walk>& walks,
                  std::vector<python_thread_stack>& stacks,
                  python_error& error);
  void native_tids(std::vector<python_thread_stack>& stacks);

  python_reader& r_;
  const python_layout& l_;
  bool gil_only_ = false;
  std::unordered_set<uint64_t> seen_;
  std::vector<iovec> local_, remote_;
};

bool python_sampler::batch(std::vector<iovec>& local,
                           std::vector<iovec>& remote, size_t& failed,
                           int& errnum) {
  constexpr size_t max_iov = 512;
  for (size_t i = 0; i < local.size(); i += max_iov) {
    size_t n = std::min(max_iov, local.size() - i);
    size_t want = 0;
    for (size_t j = i; j < i + n; ++j)
      want += local[j].iov_len;
    ++r_.reads_;
    ssize_t got = ::process_vm_readv(r_.pid_, local.data() + i, n,
                                     remote.data() + i, n, 0);
    if (got == static_cast<ssize_t>(want))
      continue;
    errnum = got < 0 ? errno : 0;
    size_t done = got < 0 ? 0 : static_cast<size_t>(got);
    failed = i;
    while (failed < local.size() && done >= local[failed].iov_len) {
      done -= local[failed].iov_len;
      ++failed;
    }
    if (failed >= local.size())
      failed = local.size() - 1;
    return false;
  }
  return true;
}

python_error python_sampler::fail(const std::string& what, uint64_t addr,
                                  int errnum) {
  std::string where
      = what + " at " + hex(addr) + " in pid " + std::to_string(r_.pid_);
  if (errnum == ESRCH)
    return err(python_errc::process_gone,
               "process " + std::to_string(r_.pid_) + " exited");
  if (errnum == EPERM)
    return err(python_errc::permission_denied,
               "may not read " + where + ": " + strerror(errnum));
  std::string base = r_.proc_root_ + "/" + std::to_string(r_.pid_);
  std::string stat;
  if (!read_proc_file(base + "/stat", 4096, stat) || stat.empty())
    return err(python_errc::process_gone,
               "process " + std::to_string(r_.pid_) + " exited");
  auto paren = stat.rfind(')');
  if (paren != std::string::npos && paren + 2 < stat.size()
      && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'))
    return err(python_errc::process_gone,
               "process " + std::to_string(r_.pid_) + " exited (zombie)");
  uint64_t dev = 0, ino = 0;
  if (stat_ids(base + "/exe", dev, ino)
      && (dev != r_.exe_dev_ || ino != r_.exe_ino_))
    return err(python_errc::process_gone, "process " + std::to_string(r_.pid_)
                                              + " exec'd another program");
  if (errnum != 0)
    return err(python_errc::torn_read,
               "cannot read " + where + ": " + strerror(errnum));
  return err(python_errc::torn_read, where);
}

bool python_sampler::read_str(uint64_t addr, std::string& out,
                              std::string& why) {
  unsigned char h[128];
  auto hs = static_cast<size_t>(l_.unicode_ascii_size);
  if (hs > sizeof(h) || !mem(addr, h, hs)) {
    why = "cannot read str";
    return false;
  }
  if (get<uint64_t>(h, l_.unicode_type) != r_.unicode_type_) {
    why = "not a str";
    return false;
  }
  auto length = get<int64_t>(h, l_.unicode_length);
  auto state = get<uint32_t>(h, l_.unicode_state);
  int kind = static_cast<int>((state >> 2) & 7);
  bool compact = (state >> 5) & 1;
  bool ascii = (state >> 6) & 1;
  if (length < 0 || length > (int64_t{1} << 30) || !compact
      || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1)) {
    why = "a str of impossible length or kind";
    return false;
  }
  size_t n = std::min(static_cast<size_t>(length), r_.limits_.max_string);
  uint64_t data = addr
                  + static_cast<uint64_t>(ascii ? l_.unicode_ascii_size
                                                : l_.unicode_compact_size);
  std::vector<unsigned char> buf(n * static_cast<size_t>(kind));
  if (!buf.empty() && !mem(data, buf.data(), buf.size())) {
    why = "cannot read a str's characters";
    return false;
  }
  out = python_decode_ucs(buf.data(), n, kind, n);
  return true;
}

bool python_sampler::read_bytes(uint64_t addr, std::string& out,
                                std::string& why) {
  unsigned char h[64];
  auto hs = static_cast<size_t>(l_.bytes_data);
  if (hs > sizeof(h) || !mem(addr, h, hs)) {
    why = "cannot read bytes";
    return false;
  }
  if (get<uint64_t>(h, l_.bytes_type) != r_.bytes_type_) {
    why = "not bytes";
    return false;
  }
  auto size = get<int64_t>(h, l_.bytes_size);
  if (size < 0 || size > (int64_t{1} << 30)) {
    why = "bytes of impossible size";
    return false;
  }
  out.clear();
  if (static_cast<uint64_t>(size) > r_.limits_.max_line_table)
    return true; // too long: no lines
  out.resize(static_cast<size_t>(size));
  if (size > 0 && !mem(addr + hs, out.data(), out.size())) {
    why = "cannot read bytes' data";
    return false;
  }
  return true;
}

bool python_sampler::parse_frame(thread_walk& w, uint64_t frame,
                                 const unsigned char* b, python_error& error) {
  uint64_t back = get<uint64_t>(b, l_.frame_back);
  uint64_t code = get<uint64_t>(b, l_.frame_code);
  if (l_.frame_kind == python_frame_kind::frame_object) {
    if (get<uint64_t>(b, l_.frame_type) != r_.frame_type_) {
      error = fail("frame that is not a frame", frame, 0);
      return false;
    }
    w.raw.push_back({code, get<int32_t>(b, l_.frame_lasti), 0});
  } else {
    auto owner = get<uint8_t>(b, l_.frame_owner);
    if (owner > frame_owned_by_cstack) {
      error = fail("frame of unknown owner", frame, 0);
      return false;
    }
    // 3.12+: shim frames of C calls into Python hold no Python code.
    if (owner != frame_owned_by_cstack)
      w.raw.push_back({code, 0, get<uint64_t>(b, l_.frame_instr)});
  }
  w.next = back;
  return true;
}

bool python_sampler::walk_all(std::vector<thread_walk>& walks,
                              python_error& error) {
  seen_.clear();
  bool object = l_.frame_kind == python_frame_kind::frame_object;
  size_t fs = object ? block_size(
                  {l_.frame_type, l_.frame_back, l_.frame_code, l_.frame_lasti})
                     : block_size({l_.frame_back, l_.frame_code, l_.frame_instr,
                                   l_.frame_owner});
  // 3.11+: each thread's datastack chunk, from its start up to the end of
  // the newest frame, in one read for all threads: the frames of a thread
  // are mostly there.
  constexpr uint64_t max_window = 256 * 1024;
  local_.clear();
  remote_.clear();
  for (auto& w : walks) {
    if (w.chunk == 0 || w.next < w.chunk || (w.next & 7) != 0
        || w.next + fs - w.chunk > max_window)
      continue;
    w.window.resize(w.next + fs - w.chunk);
    w.window_start = w.chunk;
    local_.push_back(iovec{w.window.data(), w.window.size()});
    remote_.push_back(
        iovec{reinterpret_cast<void*>(w.window_start), w.window.size()});
  }
  size_t failed = 0;
  int e = 0;
  if (!local_.empty() && !batch(local_, remote_, failed, e)) {
    // Not an error: the frames are then read one by one.
    for (size_t i = failed; i < local_.size(); ++i)
      for (auto& w : walks)
        if (w.window.data() == local_[i].iov_base)
          w.window.clear();
  }
  std::vector<unsigned char> scratch;
  std::vector<size_t> pending;
  for (;;) {
    pending.clear();
    for (size_t i = 0; i < walks.size(); ++i) {
      auto& w = walks[i];
      while (w.next != 0) {
        uint64_t f = w.next;
        if (w.steps >= r_.limits_.max_frames) {
          w.next = 0;
          w.steps = SIZE_MAX;
          break;
        }
        if ((f & 7) != 0 || !seen_.insert(f).second) {
          error = fail((f & 7) != 0 ? "misaligned frame" : "frame cycle", f, 0);
          return false;
        }
        ++w.steps;
        if (!w.window.empty() && f >= w.window_start
            && f - w.window_start + fs <= w.window.size()) {
          if (!parse_frame(w, f, w.window.data() + (f - w.window_start), error))
            return false;
          continue;
        }
        pending.push_back(i);
        break;
      }
    }
    if (pending.empty())
      return true;
    scratch.resize(pending.size() * fs);
    local_.clear();
    remote_.clear();
    for (size_t k = 0; k < pending.size(); ++k) {
      local_.push_back(iovec{scratch.data() + k * fs, fs});
      remote_.push_back(
          iovec{reinterpret_cast<void*>(walks[pending[k]].next), fs});
    }
    if (!batch(local_, remote_, failed, e)) {
      error = fail("frame", walks[pending[failed]].next, e);
      return false;
    }
    for (size_t k = 0; k < pending.size(); ++k) {
      auto& w = walks[pending[k]];
      if (!parse_frame(w, w.next, scratch.data() + k * fs, error))
        return false;
    }
  }
}

bool python_sampler::decode_all(std::vector<thread_walk>& walks,
                                std::vector<python_thread_stack>& stacks,
                                python_error& error) {
  size_t cs
      = block_size({l_.code_type, l_.code_size, l_.code_filename, l_.code_name,
                    l_.code_qualname, l_.code_firstlineno, l_.code_linetable});
  // One read of the header of every code object on the stacks.
  std::vector<uint64_t> codes;
  for (auto& w : walks)
    for (auto& f : w.raw)
      codes.push_back(f.code);
  std::sort(codes.begin(), codes.end());
  codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
  std::vector<unsigned char> heads(cs * codes.size());
  local_.clear();
  remote_.clear();
  for (size_t i = 0; i < codes.size(); ++i) {
    local_.push_back(iovec{heads.data() + i * cs, cs});
    remote_.push_back(iovec{reinterpret_cast<void*>(codes[i]), cs});
  }
  size_t failed = 0;
  int e = 0;
  if (!codes.empty() && !batch(local_, remote_, failed, e)) {
    error = fail("code object", codes[failed], e);
    return false;
  }
  std::vector<python_reader::code_entry*> entries(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) {
    const unsigned char* h = heads.data() + i * cs;
    uint64_t addr = codes[i];
    if (get<uint64_t>(h, l_.code_type) != r_.code_type_) {
      error = fail("frame's code object that is not code", addr, 0);
      return false;
    }
    uint64_t filename = get<uint64_t>(h, l_.code_filename);
    uint64_t name = get<uint64_t>(h, l_.code_name);
    uint64_t table = get<uint64_t>(h, l_.code_linetable);
    int32_t first = get<int32_t>(h, l_.code_firstlineno);
    int64_t units = l_.code_size != python_layout::none
                        ? get<int64_t>(h, l_.code_size)
                        : 0;
    auto& slot = r_.code_cache_[addr];
    if (!slot || slot->filename != filename || slot->name != name
        || slot->linetable != table || slot->first_line != first
        || slot->code_units != units) {
      auto entry = std::make_shared<python_reader::code_entry>();
      entry->filename = filename;
      entry->name = name;
      entry->linetable = table;
      entry->first_line = first;
      entry->code_units = units;
      auto code = std::make_shared<python_code>();
      code->first_line = first;
      std::string why;
      if (!read_str(filename, code->file, why)
          || !read_str(name, code->name, why)
          || (l_.code_qualname != python_layout::none
              && !read_str(get<uint64_t>(h, l_.code_qualname), code->qualname,
                           why))
          || !read_bytes(table, entry->table, why)) {
        r_.code_cache_.erase(addr);
        error = fail("code object (" + why + ")", addr, 0);
        return false;
      }
      entry->code = std::move(code);
      slot = std::move(entry);
    }
    entries[i] = slot.get();
  }
  for (size_t t = 0; t < walks.size(); ++t) {
    auto& out = stacks[t].frames;
    out.reserve(walks[t].raw.size());
    for (auto& f : walks[t].raw) {
      auto i = static_cast<size_t>(
          std::lower_bound(codes.begin(), codes.end(), f.code) - codes.begin());
      auto& entry = *entries[i];
      // The byte offset of the instruction.
      int64_t offset;
      if (l_.frame_kind == python_frame_kind::frame_object) {
        offset = l_.line_table == python_line_table::linetable310 ? f.lasti * 2
                                                                  : f.lasti;
      } else {
        uint64_t start = f.code + static_cast<uint64_t>(l_.code_code_adaptive);
        int64_t delta = static_cast<int64_t>(f.instr - start);
        // 3.11-3.12 prev_instr may be one before the first instruction.
        if (entry.code_units < 0 || (delta & 1) != 0 || delta < -2
            || delta > entry.code_units * 2) {
          error = fail("instruction pointer " + hex(f.instr)
                           + " outside its code object",
                       f.code, 0);
          return false;
        }
        offset = delta;
      }
      int32_t line;
      if (offset < 0) {
        line = entry.first_line;
      } else if (auto it = entry.lines.find(offset); it != entry.lines.end()) {
        line = it->second;
      } else {
        switch (l_.line_table) {
          case python_line_table::lnotab:
            line = python_line_lnotab(entry.table, entry.first_line, offset);
            break;
          case python_line_table::linetable310:
            line = python_line_310(entry.table, entry.first_line, offset);
            break;
          default:
            line = python_line_location(entry.table, entry.first_line, offset);
        }
        if (entry.lines.size() < 256)
          entry.lines.emplace(offset, line);
      }
      out.push_back(python_frame{entry.code, line});
    }
  }
  if (r_.code_cache_.size() > r_.limits_.max_cached_code)
    r_.code_cache_.clear();
  return true;
}

void python_sampler::native_tids(std::vector<python_thread_stack>& stacks) {
#if defined(__x86_64__) && defined(__GLIBC__)
  // glibc's struct pthread (pthread_t points to it) holds the kernel tid at
  // 0x2d0 on x86-64; a new value is checked against /proc/PID/task.
  constexpr uint64_t tid_offset = 0x2d0;
  std::vector<int32_t> tids(stacks.size(), 0);
  local_.clear();
  remote_.clear();
  for (size_t i = 0; i < stacks.size(); ++i) {
    local_.push_back(iovec{&tids[i], sizeof(int32_t)});
    remote_.push_back(
        iovec{reinterpret_cast<void*>(stacks[i].thread_id + tid_offset),
              sizeof(int32_t)});
  }
  size_t failed = stacks.size();
  int e = 0;
  if (!local_.empty() && !batch(local_, remote_, failed, e))
    for (size_t i = failed; i < tids.size(); ++i)
      tids[i] = 0;
  for (size_t i = 0; i < stacks.size(); ++i) {
    int32_t tid = tids[i];
    if (tid <= 0)
      continue;
    auto it = r_.tids_.find(stacks[i].thread_id);
    if (it == r_.tids_.end() || it->second != tid) {
      struct stat st;
      std::string task = r_.proc_root_ + "/" + std::to_string(r_.pid_)
                         + "/task/" + std::to_string(tid);
      if (::stat(task.c_str(), &st) != 0)
        continue;
      if (r_.tids_.size() > r_.limits_.max_threads)
        r_.tids_.clear();
      r_.tids_[stacks[i].thread_id] = tid;
    }
    stacks[i].native_tid = tid;
  }
#else
  (void)stacks;
#endif
}

python_result<std::vector<python_thread_stack>> python_sampler::run() {
  std::vector<python_thread_stack> result;
  // The runtime's fields in one read.
  int64_t lo = l_.runtime_interpreters_head;
  int64_t hi = l_.runtime_interpreters_head + 8;
  if (l_.runtime_tstate_current != python_layout::none) {
    lo = std::min(lo, l_.runtime_tstate_current);
    hi = std::max(hi, l_.runtime_tstate_current + 8);
  }
  std::vector<unsigned char> rb(static_cast<size_t>(hi - lo));
  uint64_t rt_addr = r_.runtime_addr_ + static_cast<uint64_t>(lo);
  if (!mem(rt_addr, rb.data(), rb.size()))
    return fail("_PyRuntime", rt_addr, errno);
  uint64_t interp = get<uint64_t>(rb.data(), l_.runtime_interpreters_head - lo);
  if (interp == 0)
    return err(python_errc::not_python,
               "pid " + std::to_string(r_.pid_)
                   + ": the interpreter is not initialised (or finalised)");
  bool gil_known = false;
  uint64_t gil_holder = 0;
  if (l_.runtime_tstate_current != python_layout::none) {
    gil_holder = get<uint64_t>(rb.data(), l_.runtime_tstate_current - lo);
    gil_known = true;
  }
  size_t is = block_size({l_.interp_next, l_.interp_tstate_head,
                          l_.interp_gil_locked, l_.interp_gil_holder});
  size_t ts = block_size({l_.tstate_next, l_.tstate_interp, l_.tstate_frame,
                          l_.tstate_thread_id, l_.tstate_native_thread_id,
                          l_.tstate_datastack_chunk});
  std::vector<unsigned char> ib(is), tb(ts);
  std::unordered_set<uint64_t> seen_interps, seen_threads;
  std::vector<thread_walk> walks;
  while (interp != 0) {
    if ((interp & 7) != 0 || seen_interps.size() >= r_.limits_.max_interpreters
        || !seen_interps.insert(interp).second)
      return fail("interpreter list", interp, 0);
    if (!mem(interp, ib.data(), is))
      return fail("interpreter state", interp, errno);
    if (l_.interp_gil_locked != python_layout::none) {
      gil_known = true;
      gil_holder = get<int32_t>(ib.data(), l_.interp_gil_locked) != 0
                       ? get<uint64_t>(ib.data(), l_.interp_gil_holder)
                       : 0;
    }
    uint64_t tstate = get<uint64_t>(ib.data(), l_.interp_tstate_head);
    while (tstate != 0) {
      if ((tstate & 7) != 0 || seen_threads.size() >= r_.limits_.max_threads
          || !seen_threads.insert(tstate).second)
        return fail("thread list", tstate, 0);
      if (!mem(tstate, tb.data(), ts))
        return fail("thread state", tstate, errno);
      if (get<uint64_t>(tb.data(), l_.tstate_interp) != interp)
        return fail("thread state of another interpreter", tstate, 0);
      python_thread_stack t;
      t.thread_id = get<uint64_t>(tb.data(), l_.tstate_thread_id);
      if (l_.tstate_native_thread_id != python_layout::none) {
        auto tid = get<uint64_t>(tb.data(), l_.tstate_native_thread_id);
        t.native_tid = tid <= INT32_MAX ? static_cast<int32_t>(tid) : 0;
      }
      if (gil_known)
        t.gil = gil_holder == tstate ? 1 : 0;
      thread_walk w;
      w.tstate = tstate;
      w.next = get<uint64_t>(tb.data(), l_.tstate_frame);
      if (l_.tstate_datastack_chunk != python_layout::none)
        w.chunk = get<uint64_t>(tb.data(), l_.tstate_datastack_chunk);
      result.push_back(std::move(t));
      walks.push_back(std::move(w));
      tstate = get<uint64_t>(tb.data(), l_.tstate_next);
    }
    interp = get<uint64_t>(ib.data(), l_.interp_next);
  }
  if (gil_only_ && gil_known) {
    // Only the holder's frames are read (py-spy's --gil).
    size_t kept = 0;
    for (size_t i = 0; i < result.size(); ++i)
      if (result[i].gil == 1) {
        result[kept] = std::move(result[i]);
        walks[kept] = std::move(walks[i]);
        ++kept;
      }
    result.resize(kept);
    walks.resize(kept);
  }
  if (l_.tstate_native_thread_id == python_layout::none)
    native_tids(result);
  // 3.11-3.12: tstate->cframe->current_frame, for all threads in one read.
  if (l_.frame_kind == python_frame_kind::interpreter_frame_cframe) {
    std::vector<uint64_t> frames(walks.size(), 0);
    local_.clear();
    remote_.clear();
    std::vector<size_t> which;
    for (size_t i = 0; i < walks.size(); ++i) {
      if (walks[i].next == 0)
        continue;
      which.push_back(i);
      local_.push_back(iovec{&frames[i], sizeof(uint64_t)});
      remote_.push_back(iovec{
          reinterpret_cast<void*>(
              walks[i].next + static_cast<uint64_t>(l_.cframe_current_frame)),
          sizeof(uint64_t)});
    }
    size_t failed = 0;
    int e = 0;
    if (!local_.empty() && !batch(local_, remote_, failed, e))
      return fail("_PyCFrame", walks[which[failed]].next, e);
    for (size_t i = 0; i < walks.size(); ++i)
      walks[i].next = frames[i];
  }
  python_error error;
  if (!walk_all(walks, error) || !decode_all(walks, result, error))
    return error;
  for (size_t i = 0; i < walks.size(); ++i)
    result[i].truncated = walks[i].steps == SIZE_MAX;
  return result;
}

python_result<std::vector<python_thread_stack>>
python_reader::sample(bool gil_holder_only) {
  return python_sampler(*this, gil_holder_only).run();
}

python_result<std::unique_ptr<python_reader>>
python_reader::attach(int pid, const std::string& proc_root,
                      python_reader_limits limits) {
  std::string spid = std::to_string(pid);
  if (pid <= 0)
    return err(python_errc::process_gone, "no process " + spid);
  std::string base = proc_root + "/" + spid;
  std::unique_ptr<python_reader> r(new python_reader);
  r->pid_ = pid;
  r->proc_root_ = proc_root;
  r->limits_ = limits;
  if (!stat_ids(base + "/exe", r->exe_dev_, r->exe_ino_)) {
    int e = errno;
    if (e == ENOENT || e == ESRCH)
      return err(python_errc::process_gone, "process " + spid + " exited");
    if (e == EACCES || e == EPERM)
      return err(python_errc::permission_denied,
                 "may not read " + base + "/exe: " + strerror(e));
    return err(python_errc::io_error,
               "cannot stat " + base + "/exe: " + strerror(e));
  }
  std::string maps_text;
  if (!read_proc_file(base + "/maps", 64u << 20, maps_text)) {
    int e = errno;
    if (e == ENOENT || e == ESRCH)
      return err(python_errc::process_gone, "process " + spid + " exited");
    return err(e == EACCES || e == EPERM ? python_errc::permission_denied
                                         : python_errc::io_error,
               "cannot read " + base + "/maps: " + strerror(e));
  }
  auto maps = parse_maps(maps_text);
  if (maps.empty())
    return err(python_errc::process_gone,
               "process " + spid + " has no mapped files (exited or kernel)");
  // Candidates: a libpython, then the executable.
  std::vector<std::string> candidates;
  for (auto& m : maps) {
    auto b = base_name(m.path);
    if (b.compare(0, 9, "libpython") == 0 && b.find(".so") != std::string::npos
        && std::find(candidates.begin(), candidates.end(), m.path)
               == candidates.end())
      candidates.push_back(m.path);
  }
  char exe[4096];
  ssize_t n = ::readlink((base + "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    const std::string deleted = " (deleted)";
    if (path.size() > deleted.size()
        && path.compare(path.size() - deleted.size(), deleted.size(), deleted)
               == 0)
      path.resize(path.size() - deleted.size());
    if (std::find(candidates.begin(), candidates.end(), path)
        == candidates.end())
      candidates.push_back(path);
  }
  const std::vector<std::string> wanted
      = {"_PyRuntime",   "Py_Version",     "PyCode_Type",
         "PyFrame_Type", "PyUnicode_Type", "PyBytes_Type"};
  std::string problems;
  bool looks_like_python = false;
  int name_major = 0, name_minor = 0;
  for (auto& path : candidates) {
    auto b = base_name(path);
    int ma = 0, mi = 0;
    bool named = version_from_name(b, ma, mi)
                 && (b.compare(0, 6, "python") == 0
                     || b.compare(0, 9, "libpython") == 0);
    if (named) {
      looks_like_python = true;
      name_major = ma;
      name_minor = mi;
    }
    std::vector<mapping> own;
    for (auto& m : maps)
      if (m.path == path)
        own.push_back(m);
    if (own.empty())
      continue;
    std::string file = base + "/root" + path;
    int fd = open_regular(file);
    if (fd < 0) {
      problems += "; cannot open " + file + ": " + strerror(errno);
      continue;
    }
    fd_guard g{fd};
    elf_symbols syms;
    std::string why;
    if (!read_elf(fd, wanted, syms, why)) {
      problems += "; " + file + ": " + why;
      continue;
    }
    auto runtime = syms.values.find("_PyRuntime");
    if (runtime == syms.values.end()) {
      if (named && (ma < 3 || (ma == 3 && mi < 7)))
        return err(python_errc::unsupported_version,
                   "pid " + spid + " runs Python " + std::to_string(ma) + "."
                       + std::to_string(mi) + " (" + path
                       + "): only 3.7 and later are read");
      continue;
    }
    uint64_t bias = 0;
    if (!load_bias(own, syms.loads, bias))
      return err(python_errc::io_error,
                 "cannot place " + path + " in pid " + spid
                     + "'s memory (no PT_LOAD for its mappings)");
    auto sym = [&](const char* s) -> uint64_t {
      auto it = syms.values.find(s);
      return it == syms.values.end() ? 0 : it->second + bias;
    };
    r->binary_ = path;
    r->runtime_addr_ = runtime->second + bias;
    r->code_type_ = sym("PyCode_Type");
    r->unicode_type_ = sym("PyUnicode_Type");
    r->bytes_type_ = sym("PyBytes_Type");
    r->frame_type_ = sym("PyFrame_Type");
    // The version: Py_Version (3.11+), else the file's name.
    int major = 0, minor = 0;
    if (uint64_t v = sym("Py_Version"); v != 0) {
      uint32_t hexv = 0;
      if (!read_mem(pid, v, &hexv, sizeof(hexv)))
        return err(errno == ESRCH   ? python_errc::process_gone
                   : errno == EPERM ? python_errc::permission_denied
                                    : python_errc::io_error,
                   "cannot read Py_Version at " + hex(v) + " in pid " + spid
                       + ": " + strerror(errno));
      major = static_cast<int>(hexv >> 24);
      minor = static_cast<int>((hexv >> 16) & 0xff);
      r->version_ = std::to_string(major) + "." + std::to_string(minor) + "."
                    + std::to_string((hexv >> 8) & 0xff);
    } else if (named) {
      major = ma;
      minor = mi;
      r->version_ = std::to_string(major) + "." + std::to_string(minor);
    } else {
      return err(python_errc::unsupported_version,
                 "pid " + spid + ": " + path
                     + " has _PyRuntime but neither Py_Version nor a "
                       "python3.X name to tell its version by");
    }
    if (major != 3 || minor < 7)
      return err(python_errc::unsupported_version,
                 "pid " + spid + " runs Python " + r->version_ + " (" + path
                     + "): only 3.7 and later are read");
    if (const python_layout* t = python_table_layout(minor)) {
      r->layout_ = *t;
    } else {
      unsigned char dbg[python_debug_offsets_size];
      if (!read_mem(pid, r->runtime_addr_, dbg, sizeof(dbg)))
        return err(errno == ESRCH ? python_errc::process_gone
                                  : python_errc::io_error,
                   "cannot read _PyRuntime at " + hex(r->runtime_addr_)
                       + " in pid " + spid + ": " + strerror(errno));
      std::string why2;
      if (!python_layout_from_debug_offsets(dbg, sizeof(dbg), r->layout_, why2))
        return err(python_errc::unsupported_version,
                   "pid " + spid + " runs Python " + r->version_ + " (" + path
                       + "): " + why2);
    }
    if (r->code_type_ == 0 || r->unicode_type_ == 0 || r->bytes_type_ == 0
        || (r->layout_.frame_kind == python_frame_kind::frame_object
            && r->frame_type_ == 0))
      return err(python_errc::no_symbols,
                 path + " in pid " + spid
                     + " lacks the symbols of CPython's types (PyCode_Type, "
                       "PyUnicode_Type, PyBytes_Type, PyFrame_Type)");
    return python_result<std::unique_ptr<python_reader>>(std::move(r));
  }
  if (looks_like_python)
    return err(python_errc::no_symbols,
               "pid " + spid + " looks like Python "
                   + std::to_string(name_major) + "."
                   + std::to_string(name_minor)
                   + " but no _PyRuntime symbol was found (stripped or static "
                     "interpreter?)"
                   + problems);
  return err(python_errc::not_python,
             "pid " + spid + " is not CPython: no _PyRuntime in "
                 + (candidates.empty() ? std::string("its executable")
                                       : candidates.front())
                 + problems);
}

} // namespace gpa::rt
