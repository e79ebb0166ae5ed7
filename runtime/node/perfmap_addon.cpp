// A Node.js addon that makes a running Node process write its JIT symbols to
// /tmp/perf-<pid>.map, as `node --perf-basic-prof` does from the start, so
// that perf names JavaScript frames. The agent's Node.js profiler
// (--nodejs-mode attach-maps) loads it into a running process through the
// inspector (runtime/node_attach.hpp); nothing of the agent is linked in.
//
// Its `start()` starts the writer (once per process, whatever the number of
// loads and calls) and returns "" or why not; `stop()` ends it and removes
// the file. Entries: every JIT,
// baseline and Wasm code object V8 has (enumerated at start) and adds; a
// code object that the GC moves gets a line at its new place. Interpreted
// functions run in V8's shared interpreter code and stay unnamed (they need
// --interpreted-frames-native-stack at start).

#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node.h>
#include <v8.h>

namespace {

struct writer {
  std::mutex mu;
  v8::Isolate* isolate = nullptr;
  FILE* out = nullptr;
  std::string path;
  // start -> (length, name) of the code objects written, for moves.
  std::unordered_map<uintptr_t, std::pair<size_t, std::string>> code;
};

writer& the_writer() {
  static writer w;
  return w;
}

void write_line(writer& w, uintptr_t start, size_t len,
                const std::string& name) {
  std::fprintf(w.out, "%lx %zx %s\n", static_cast<unsigned long>(start), len,
               name.c_str());
  std::fflush(w.out);
}

void on_code_event(const v8::JitCodeEvent* ev) {
  auto& w = the_writer();
  std::lock_guard<std::mutex> lock(w.mu);
  if (w.out == nullptr || ev == nullptr)
    return;
  auto start = reinterpret_cast<uintptr_t>(ev->code_start);
  switch (ev->type) {
    case v8::JitCodeEvent::CODE_ADDED: {
      if (ev->code_type == v8::JitCodeEvent::BYTE_CODE)
        return; // not machine code: never on a native stack
      std::string name(ev->name.str, ev->name.len);
      for (auto& c : name)
        if (c == '\n' || c == '\r')
          c = ' ';
      write_line(w, start, ev->code_len, name);
      w.code[start] = {ev->code_len, std::move(name)};
      return;
    }
    case v8::JitCodeEvent::CODE_MOVED: {
      auto i = w.code.find(start);
      if (i == w.code.end())
        return;
      auto entry = std::move(i->second);
      w.code.erase(i);
      auto to = reinterpret_cast<uintptr_t>(ev->new_code_start);
      write_line(w, to, entry.first, entry.second);
      w.code[to] = std::move(entry);
      return;
    }
    case v8::JitCodeEvent::CODE_REMOVED: w.code.erase(start); return;
    default: return;
  }
}

/// Starts writing; "" on success (or if already started), else why not.
std::string start_writer(v8::Isolate* isolate) {
  auto& w = the_writer();
  {
    std::lock_guard<std::mutex> lock(w.mu);
    if (w.out != nullptr)
      return {};
    w.path = "/tmp/perf-" + std::to_string(::getpid()) + ".map";
    // Appends to a map the process already has (--perf-basic-prof); never
    // follows a link planted at the name.
    int fd
        = ::open(w.path.c_str(),
                 O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      return "cannot open " + w.path;
    w.out = ::fdopen(fd, "a");
    if (w.out == nullptr) {
      ::close(fd);
      return "cannot open " + w.path;
    }
    w.isolate = isolate;
  }
  // Outside the lock: V8 calls the handler for existing code right away.
  isolate->SetJitCodeEventHandler(v8::kJitCodeEventEnumExisting, on_code_event);
  return {};
}

void stop(const v8::FunctionCallbackInfo<v8::Value>& info) {
  auto& w = the_writer();
  auto* isolate = info.GetIsolate();
  bool was = false;
  if (w.isolate == isolate) {
    isolate->SetJitCodeEventHandler(v8::kJitCodeEventDefault, nullptr);
    std::lock_guard<std::mutex> lock(w.mu);
    if (w.out != nullptr) {
      std::fclose(w.out);
      w.out = nullptr;
      ::unlink(w.path.c_str());
      was = true;
    }
    w.code.clear();
    w.isolate = nullptr;
  }
  info.GetReturnValue().Set(was);
}

void start(const v8::FunctionCallbackInfo<v8::Value>& info) {
  auto* isolate = info.GetIsolate();
  auto why = start_writer(isolate);
  info.GetReturnValue().Set(
      v8::String::NewFromUtf8(isolate, why.c_str()).ToLocalChecked());
}

void started(const v8::FunctionCallbackInfo<v8::Value>& info) {
  auto& w = the_writer();
  std::lock_guard<std::mutex> lock(w.mu);
  info.GetReturnValue().Set(w.out != nullptr);
}

} // namespace

// Context-aware (NODE_MODULE_INIT), so that loading it again in the same
// process works: Node looks the init function up by name each time.
NODE_MODULE_INIT(/* exports, module, context */) {
  auto* isolate = context->GetIsolate();
  auto set = [&](const char* key, v8::Local<v8::Value> value) {
    auto ok = exports->Set(
        context, v8::String::NewFromUtf8(isolate, key).ToLocalChecked(), value);
    (void)ok.IsJust();
  };
  set("start", v8::FunctionTemplate::New(isolate, start)
                   ->GetFunction(context)
                   .ToLocalChecked());
  set("stop", v8::FunctionTemplate::New(isolate, stop)
                  ->GetFunction(context)
                  .ToLocalChecked());
  set("started", v8::FunctionTemplate::New(isolate, started)
                     ->GetFunction(context)
                     .ToLocalChecked());
}
