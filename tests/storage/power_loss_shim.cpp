// LD_PRELOAD shim that simulates a power loss in the process it is loaded into.
//
// It watches the files named data.mdb in the directory $GLASNODE_POWER_LOSS_DIR (LMDB's data
// file) and keeps, for each, an undo log: the pre-image of every page written since that
// file's last fsync/fdatasync. At the point named by $GLASNODE_POWER_LOSS_AT it puts every
// logged pre-image back, cuts the file to the size it had at its last sync, appends one line
// describing what it undid to $GLASNODE_POWER_LOSS_LOG, and _exit()s with
// power_loss_exit_status: the file is then what the disk held when the power went, if the
// disk kept exactly the synced writes and lost every other one.
//
// What this build of LMDB does (liblmdb 0.9, storage/env.cpp opens without MDB_WRITEMAP):
// pages are written with pwrite() (one page) or lseek()+writev() (several) on a descriptor
// opened O_RDWR, the data is made durable with fdatasync() on it, and with sync_on_commit the
// meta page is then written with pwrite() on a second descriptor opened O_DSYNC, durable when
// the call returns. The data file is mapped read-only. The shim covers exactly these calls
// (and write/pwritev/fsync/sync/syncfs for completeness); a writable shared mapping, msync or
// ftruncate of a watched file, which it cannot model, end the process with
// unmodelled_exit_status so that a test cannot pass without the real path being covered.
//
// $GLASNODE_POWER_LOSS_AT is KIND:N, the N-th (from 1) event of that kind in the process:
//   data        before the N-th write to a watched file through a descriptor without O_DSYNC
//   sync        before the N-th fsync/fdatasync of a watched file
//   meta        before the N-th write through an O_DSYNC descriptor (LMDB's meta page)
//   after-meta  right after the N-th such write has returned
//
// Not modelled: torn writes (a sector or page half old, half new), reordering among unsynced
// writes (a real disk may keep any subset of them, here it keeps none), loss of unsynced
// metadata other than the file size (directory entries of new files), lying disk caches, and
// other processes writing the same file. Unsynced extensions of the file read as zeros up to
// its synced size and are cut beyond it.
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <map>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "tests/storage/power_loss.hpp"

namespace {

using glasnode::storage::testing::power_loss_exit_status;
using glasnode::storage::testing::unmodelled_exit_status;

constexpr off_t page = 4096;

template <class F>
F real(const char* name) {
    void* p = ::dlsym(RTLD_NEXT, name);
    if (p == nullptr) {
        std::fprintf(stderr, "power_loss_shim: no next %s\n", name);
        std::_Exit(unmodelled_exit_status);
    }
    return reinterpret_cast<F>(p);
}

using open_fn = int (*)(const char*, int, ...);
using close_fn = int (*)(int);
using write_fn = ssize_t (*)(int, const void*, size_t);
using pwrite_fn = ssize_t (*)(int, const void*, size_t, off_t);
using writev_fn = ssize_t (*)(int, const struct iovec*, int);
using pwritev_fn = ssize_t (*)(int, const struct iovec*, int, off_t);
using sync_fd_fn = int (*)(int);
using sync_fn = void (*)();
using msync_fn = int (*)(void*, size_t, int);
using ftruncate_fn = int (*)(int, off_t);
using mmap_fn = void* (*)(void*, size_t, int, int, int, off_t);

struct real_calls {
    open_fn open = real<open_fn>("open");
    close_fn close = real<close_fn>("close");
    write_fn write = real<write_fn>("write");
    pwrite_fn pwrite = real<pwrite_fn>("pwrite");
    writev_fn writev = real<writev_fn>("writev");
    pwritev_fn pwritev = real<pwritev_fn>("pwritev");
    sync_fd_fn fsync = real<sync_fd_fn>("fsync");
    sync_fd_fn fdatasync = real<sync_fd_fn>("fdatasync");
    sync_fn sync = real<sync_fn>("sync");
    sync_fd_fn syncfs = real<sync_fd_fn>("syncfs");
    msync_fn msync = real<msync_fn>("msync");
    ftruncate_fn ftruncate = real<ftruncate_fn>("ftruncate");
    mmap_fn mmap = real<mmap_fn>("mmap");
};

const real_calls& calls() {
    static const real_calls r;
    return r;
}

enum class kind { data, sync, meta, after_meta };

struct file_state {
    std::string path;
    bool size_known = false;
    off_t synced_size = 0;
    // Page index -> the page as the disk holds it (zeros past the synced end).
    std::map<off_t, std::vector<char>> pages;
};

struct watched_fd {
    std::pair<dev_t, ino_t> file;
    bool dsync = false;
};

struct state {
    bool configured = false;
    std::string dir;
    kind at_kind = kind::data;
    std::uint64_t at_count = 0; // 0: never
    std::string log_path;
    std::uint64_t seen[4] = {0, 0, 0, 0};
    std::map<std::pair<dev_t, ino_t>, file_state> files;
    std::map<int, watched_fd> fds;
};

// The shim's state outlives static destruction (never freed): libc and LMDB still close and
// write files after it, from exit handlers and destructors.
std::recursive_mutex& lock() {
    static auto* mu = new std::recursive_mutex;
    return *mu;
}

[[noreturn]] void unmodelled(const char* what) {
    std::fprintf(stderr, "power_loss_shim: %s on a watched file cannot be modelled\n", what);
    std::_Exit(unmodelled_exit_status);
}

state& st() {
    static state& s = *new state([] {
        state x;
        const char* dir = std::getenv("GLASNODE_POWER_LOSS_DIR");
        const char* at = std::getenv("GLASNODE_POWER_LOSS_AT");
        const char* log = std::getenv("GLASNODE_POWER_LOSS_LOG");
        if (dir == nullptr || at == nullptr)
            return x;
        char resolved[PATH_MAX];
        if (::realpath(dir, resolved) == nullptr) {
            std::fprintf(stderr, "power_loss_shim: %s: %s\n", dir, std::strerror(errno));
            std::_Exit(unmodelled_exit_status);
        }
        x.dir = resolved;
        const std::string spec = at;
        const auto colon = spec.find(':');
        const std::string name = spec.substr(0, colon);
        if (name == "data")
            x.at_kind = kind::data;
        else if (name == "sync")
            x.at_kind = kind::sync;
        else if (name == "meta")
            x.at_kind = kind::meta;
        else if (name == "after-meta")
            x.at_kind = kind::after_meta;
        else {
            std::fprintf(stderr, "power_loss_shim: bad GLASNODE_POWER_LOSS_AT %s\n", at);
            std::_Exit(unmodelled_exit_status);
        }
        x.at_count =
            colon == std::string::npos ? 0 : std::strtoull(spec.c_str() + colon + 1, nullptr, 10);
        x.log_path = log != nullptr ? log : "";
        x.configured = true;
        return x;
    }());
    return s;
}

bool is_watched_path(const char* path) {
    const state& s = st();
    if (!s.configured || path == nullptr)
        return false;
    const char* slash = std::strrchr(path, '/');
    const std::string base = slash != nullptr ? slash + 1 : path;
    if (base != "data.mdb")
        return false;
    const std::string parent = slash != nullptr ? std::string(path, slash) : ".";
    char resolved[PATH_MAX];
    return ::realpath(parent.empty() ? "/" : parent.c_str(), resolved) != nullptr &&
           s.dir == resolved;
}

watched_fd* watched(int fd) {
    auto& fds = st().fds;
    const auto it = fds.find(fd);
    return it == fds.end() ? nullptr : &it->second;
}

__attribute__((format(printf, 1, 2))) void log_line(const char* format, ...) {
    const state& s = st();
    if (s.log_path.empty())
        return;
    char line[512];
    va_list args;
    va_start(args, format);
    const int n = std::vsnprintf(line, sizeof line, format, args);
    va_end(args);
    const int fd =
        calls().open(s.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (n > 0)
        (void)calls().write(fd, line, static_cast<size_t>(std::min<int>(n, sizeof line - 1)));
    calls().close(fd);
}

// Puts every watched file back to its synced image and ends the process.
[[noreturn]] void lose_power(const char* event) {
    state& s = st();
    std::uint64_t pages_restored = 0;
    std::uint64_t bytes_cut = 0;
    for (auto& [id, f] : s.files) {
        const int fd = calls().open(f.path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0)
            unmodelled("reopening for the power loss");
        struct stat now {};
        if (::fstat(fd, &now) != 0)
            unmodelled("fstat");
        if (!f.size_known)
            f.synced_size = now.st_size; // nothing written since the last sync
        for (const auto& [index, image] : f.pages) {
            const off_t start = index * page;
            if (start >= f.synced_size)
                continue;
            const size_t n = static_cast<size_t>(std::min<off_t>(page, f.synced_size - start));
            if (calls().pwrite(fd, image.data(), n, start) != static_cast<ssize_t>(n))
                unmodelled("restoring a page");
            ++pages_restored;
        }
        if (now.st_size > f.synced_size) {
            bytes_cut += static_cast<std::uint64_t>(now.st_size - f.synced_size);
            if (calls().ftruncate(fd, f.synced_size) != 0)
                unmodelled("cutting back");
        }
        calls().close(fd);
    }
    log_line("power lost %s data=%llu sync=%llu meta=%llu pages_restored=%llu bytes_cut=%llu\n",
             event, static_cast<unsigned long long>(s.seen[0]),
             static_cast<unsigned long long>(s.seen[1]), static_cast<unsigned long long>(s.seen[2]),
             static_cast<unsigned long long>(pages_restored),
             static_cast<unsigned long long>(bytes_cut));
    std::_Exit(power_loss_exit_status);
}

// Counts an event of `k` and loses the power if it is the chosen one.
void event(kind k, const char* name) {
    state& s = st();
    const std::uint64_t n = ++s.seen[static_cast<int>(k)];
    if (s.at_count != 0 && s.at_kind == k && n == s.at_count)
        lose_power(name);
}

file_state& file_of(const watched_fd& w) {
    return st().files.at(w.file);
}

void learn_synced_size(int fd, file_state& f) {
    if (f.size_known)
        return;
    struct stat now {};
    if (::fstat(fd, &now) != 0)
        unmodelled("fstat");
    // No write since the last sync (or ever): the size now is the synced size.
    f.synced_size = now.st_size;
    f.size_known = true;
}

// Before an unsynced write of [off, off + len): logs the pre-image of every page not yet
// logged since the last sync.
void log_pre_images(int fd, file_state& f, off_t off, size_t len) {
    learn_synced_size(fd, f);
    if (len == 0)
        return;
    for (off_t index = off / page; index <= (off + static_cast<off_t>(len) - 1) / page; ++index) {
        if (f.pages.count(index) != 0)
            continue;
        std::vector<char> image(static_cast<size_t>(page), 0);
        const off_t start = index * page;
        if (start < f.synced_size) {
            const size_t want = static_cast<size_t>(std::min<off_t>(page, f.synced_size - start));
            if (::pread(fd, image.data(), want, start) < 0)
                unmodelled("reading a pre-image");
        }
        f.pages.emplace(index, std::move(image));
    }
}

// After a durable (O_DSYNC) write of `data` at `off`: that range now survives a power loss.
void make_durable(int fd, file_state& f, off_t off, const char* data, size_t len) {
    learn_synced_size(fd, f);
    for (size_t done = 0; done < len;) {
        const off_t at = off + static_cast<off_t>(done);
        const off_t index = at / page;
        const size_t in_page =
            std::min(len - done, static_cast<size_t>(page - (at - index * page)));
        if (auto it = f.pages.find(index); it != f.pages.end())
            std::memcpy(it->second.data() + (at - index * page), data + done, in_page);
        done += in_page;
    }
    f.synced_size = std::max<off_t>(f.synced_size, off + static_cast<off_t>(len));
}

void synced(file_state& f) {
    f.pages.clear();
    f.size_known = false;
}

// Gathers an iovec into one buffer (the durable path needs the bytes).
std::vector<char> gather(const struct iovec* iov, int count) {
    std::vector<char> all;
    for (int i = 0; i < count; ++i) {
        const char* p = static_cast<const char*>(iov[i].iov_base);
        all.insert(all.end(), p, p + iov[i].iov_len);
    }
    return all;
}

size_t total(const struct iovec* iov, int count) {
    size_t n = 0;
    for (int i = 0; i < count; ++i)
        n += iov[i].iov_len;
    return n;
}

// One write to a watched descriptor at `off`, through `perform`.
template <class Perform>
ssize_t watched_write(int fd, watched_fd& w, off_t off, const char* bytes, size_t len,
                      Perform perform) {
    file_state& f = file_of(w);
    if (!w.dsync) {
        event(kind::data, "before a data write");
        log_pre_images(fd, f, off, len);
        return perform();
    }
    event(kind::meta, "before a durable (O_DSYNC) write");
    const ssize_t n = perform();
    if (n > 0)
        make_durable(fd, f, off, bytes, static_cast<size_t>(n));
    event(kind::after_meta, "after a durable (O_DSYNC) write");
    return n;
}

} // namespace

extern "C" {

int open(const char* path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & (O_CREAT | O_TMPFILE)) != 0) {
        va_list args;
        va_start(args, flags);
        mode = static_cast<mode_t>(va_arg(args, int));
        va_end(args);
    }
    const int fd = calls().open(path, flags, mode);
    if (fd < 0 || !is_watched_path(path))
        return fd;
    std::lock_guard lk(lock());
    struct stat s {};
    if (::fstat(fd, &s) != 0)
        unmodelled("fstat");
    const auto id = std::make_pair(s.st_dev, s.st_ino);
    auto& f = st().files[id];
    if (f.path.empty()) {
        char resolved[PATH_MAX];
        f.path = ::realpath(path, resolved) != nullptr ? resolved : path;
    }
    st().fds[fd] = watched_fd{id, (flags & O_DSYNC) != 0};
    return fd;
}

int open64(const char* path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & (O_CREAT | O_TMPFILE)) != 0) {
        va_list args;
        va_start(args, flags);
        mode = static_cast<mode_t>(va_arg(args, int));
        va_end(args);
    }
    return open(path, flags, mode);
}

int close(int fd) {
    {
        std::lock_guard lk(lock());
        st().fds.erase(fd);
    }
    return calls().close(fd);
}

ssize_t pwrite(int fd, const void* buf, size_t len, off_t off) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().pwrite(fd, buf, len, off);
    return watched_write(fd, *w, off, static_cast<const char*>(buf), len,
                         [&] { return calls().pwrite(fd, buf, len, off); });
}

ssize_t pwrite64(int fd, const void* buf, size_t len, off_t off) {
    return pwrite(fd, buf, len, off);
}

ssize_t write(int fd, const void* buf, size_t len) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().write(fd, buf, len);
    const off_t off = ::lseek(fd, 0, SEEK_CUR);
    return watched_write(fd, *w, off, static_cast<const char*>(buf), len,
                         [&] { return calls().write(fd, buf, len); });
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().writev(fd, iov, count);
    const off_t off = ::lseek(fd, 0, SEEK_CUR);
    const std::vector<char> bytes = w->dsync ? gather(iov, count) : std::vector<char>{};
    return watched_write(fd, *w, off, bytes.data(), total(iov, count),
                         [&] { return calls().writev(fd, iov, count); });
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t off) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().pwritev(fd, iov, count, off);
    const std::vector<char> bytes = w->dsync ? gather(iov, count) : std::vector<char>{};
    return watched_write(fd, *w, off, bytes.data(), total(iov, count),
                         [&] { return calls().pwritev(fd, iov, count, off); });
}

ssize_t pwritev64(int fd, const struct iovec* iov, int count, off_t off) {
    return pwritev(fd, iov, count, off);
}

int fsync(int fd) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().fsync(fd);
    event(kind::sync, "before fsync");
    const int r = calls().fsync(fd);
    if (r == 0)
        synced(file_of(*w));
    return r;
}

int fdatasync(int fd) {
    std::lock_guard lk(lock());
    watched_fd* w = watched(fd);
    if (w == nullptr)
        return calls().fdatasync(fd);
    event(kind::sync, "before fdatasync");
    const int r = calls().fdatasync(fd);
    if (r == 0)
        synced(file_of(*w));
    return r;
}

void sync() {
    std::lock_guard lk(lock());
    calls().sync();
    for (auto& [id, f] : st().files)
        synced(f);
}

int syncfs(int fd) {
    std::lock_guard lk(lock());
    const int r = calls().syncfs(fd);
    if (r == 0) {
        for (auto& [id, f] : st().files)
            synced(f);
    }
    return r;
}

int msync(void* addr, size_t len, int flags) {
    {
        std::lock_guard lk(lock());
        if (!st().files.empty())
            unmodelled("msync");
    }
    return calls().msync(addr, len, flags);
}

int ftruncate(int fd, off_t length) {
    {
        std::lock_guard lk(lock());
        if (watched(fd) != nullptr)
            unmodelled("ftruncate");
    }
    return calls().ftruncate(fd, length);
}

int ftruncate64(int fd, off_t length) {
    return ftruncate(fd, length);
}

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (fd >= 0 && (prot & PROT_WRITE) != 0 && (flags & MAP_SHARED) != 0) {
        std::lock_guard lk(lock());
        if (watched(fd) != nullptr)
            unmodelled("a writable shared mapping");
    }
    return calls().mmap(addr, len, prot, flags, fd, off);
}

void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}

} // extern "C"
