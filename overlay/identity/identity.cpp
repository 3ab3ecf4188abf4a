#include "overlay/identity/identity.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <sodium.h>

#include "overlay/identity/sodium_init.hpp"

namespace glasnode::overlay {

namespace {

constexpr std::array<std::uint8_t, 8> key_magic{'g', 'l', 'a', 's', 'n', 'o', 'd', 'e'};
constexpr std::uint8_t key_format_version = 1;
constexpr std::uint8_t key_type_ed25519_seed = 1;
constexpr std::size_t checksum_size = 16;
constexpr std::size_t checksummed_size = key_file_size - checksum_size;
static_assert(checksummed_size == key_magic.size() + 2 + sizeof(key_seed));

using key_file = std::array<std::uint8_t, key_file_size>;

// Wipes a secret buffer on every path out of a scope.
template <class T>
struct wipe_on_exit {
    T& secret;
    ~wipe_on_exit() { sodium_memzero(secret.data(), secret.size()); }
};

class fd_guard {
public:
    explicit fd_guard(int fd) noexcept : m_fd(fd) {}
    ~fd_guard() {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const noexcept { return m_fd; }
    int release() noexcept { return std::exchange(m_fd, -1); }

private:
    int m_fd;
};

std::string os_error(const std::string& what, int err) {
    return what + ": " + std::generic_category().message(err);
}

std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

void checksum(const std::uint8_t* data, std::uint8_t* out) {
    std::array<std::uint8_t, 32> h{};
    crypto_generichash(h.data(), h.size(), data, checksummed_size, nullptr, 0);
    std::memcpy(out, h.data(), checksum_size);
}

void encode_key_file(const key_seed& seed, key_file& out) {
    std::size_t at = 0;
    for (std::uint8_t b : key_magic)
        out[at++] = b;
    out[at++] = key_format_version;
    out[at++] = key_type_ed25519_seed;
    std::memcpy(out.data() + at, seed.data(), seed.size());
    at += seed.size();
    checksum(out.data(), out.data() + at);
}

status write_all(int fd, const std::uint8_t* data, std::size_t size, const std::string& path) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return make_error(errc::io_error, os_error("cannot write " + path, errno));
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

status fsync_dir(const std::filesystem::path& dir) {
    fd_guard fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
        return make_error(errc::io_error, os_error("cannot sync directory " + dir.string(), errno));
    }
    return {};
}

status make_private_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec))
        return {};
    if (dir.has_parent_path()) {
        std::filesystem::create_directories(dir.parent_path(), ec);
        if (ec) {
            return make_error(errc::io_error,
                              "cannot create " + dir.parent_path().string() + ": " + ec.message());
        }
    }
    if (::mkdir(dir.c_str(), 0700) != 0) {
        if (errno == EEXIST && std::filesystem::is_directory(dir, ec))
            return {};
        return make_error(errc::io_error, os_error("cannot create " + dir.string(), errno));
    }
    // mkdir honours the umask; make the mode exactly 0700 whatever it was.
    if (::chmod(dir.c_str(), 0700) != 0) {
        return make_error(errc::io_error, os_error("cannot chmod " + dir.string(), errno));
    }
    return {};
}

} // namespace

bool verify(const public_key& key, byte_view message, const signature& sig) noexcept {
    ensure_sodium();
    static const std::uint8_t empty = 0;
    const std::uint8_t* data = message.empty() ? &empty : message.data();
    return crypto_sign_verify_detached(sig.data(), data, message.size(), key.data()) == 0;
}

std::string node_id_string(const public_key& key) {
    return to_hex(key);
}

std::string short_id(const public_key& key) {
    return to_hex(byte_view(key).first(8));
}

identity identity::from_seed(const key_seed& seed) {
    ensure_sodium();
    identity id;
    crypto_sign_seed_keypair(id.m_pk.data(), id.m_sk.data(), seed.data());
    return id;
}

identity identity::generate(random_source& rng) {
    key_seed seed{};
    wipe_on_exit<key_seed> wipe{seed};
    rng.fill(seed);
    return from_seed(seed);
}

identity::~identity() {
    sodium_memzero(m_sk.data(), m_sk.size());
}

signature identity::sign(byte_view message) const {
    signature sig{};
    static const std::uint8_t empty = 0;
    const std::uint8_t* data = message.empty() ? &empty : message.data();
    crypto_sign_detached(sig.data(), nullptr, data, message.size(), m_sk.data());
    return sig;
}

key_seed identity::seed() const {
    key_seed seed{};
    crypto_sign_ed25519_sk_to_seed(seed.data(), m_sk.data());
    return seed;
}

result<identity> identity::load(const std::filesystem::path& dir) {
    ensure_sodium();
    const std::filesystem::path path = dir / key_file_name;
    const std::string name = path.string();
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
        const int err = errno;
        if (err == ENOENT)
            return make_error(errc::not_found, "no key file at " + name);
        if (err == ELOOP) {
            return make_error(errc::invalid_argument,
                              "key file " + name + " is a symbolic link; refusing to follow it");
        }
        return make_error(errc::io_error, os_error("cannot open key file " + name, err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return make_error(errc::io_error, os_error("cannot stat key file " + name, errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error(errc::invalid_argument, "key file " + name + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        return make_error(errc::invalid_argument,
                          "key file " + name + " has mode " + mode_text(st.st_mode) +
                              ": group or others may access it (run: chmod 600 " + name + ")");
    }
    if (st.st_size != static_cast<off_t>(key_file_size)) {
        return make_error(errc::corrupt, "key file " + name + " has " + std::to_string(st.st_size) +
                                             " bytes, expected " + std::to_string(key_file_size) +
                                             ": not a glasnode key file");
    }
    key_file buf{};
    wipe_on_exit<key_file> wipe{buf};
    std::size_t have = 0;
    while (have < buf.size()) {
        const ssize_t n = ::read(fd.get(), buf.data() + have, buf.size() - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return make_error(errc::io_error, os_error("cannot read key file " + name, errno));
        }
        if (n == 0) {
            return make_error(errc::corrupt, "key file " + name + " shrank while being read");
        }
        have += static_cast<std::size_t>(n);
    }
    if (!std::equal(key_magic.begin(), key_magic.end(), buf.begin())) {
        return make_error(errc::corrupt, "key file " + name + " is not a glasnode key file");
    }
    const std::uint8_t version = buf[key_magic.size()];
    const std::uint8_t type = buf[key_magic.size() + 1];
    if (version != key_format_version) {
        return make_error(errc::unsupported_version,
                          "key file " + name + " has format version " + std::to_string(version) +
                              "; this build reads version " + std::to_string(key_format_version));
    }
    std::array<std::uint8_t, checksum_size> sum{};
    checksum(buf.data(), sum.data());
    if (sodium_memcmp(sum.data(), buf.data() + checksummed_size, checksum_size) != 0) {
        return make_error(errc::corrupt, "key file " + name + " is damaged (checksum mismatch)");
    }
    if (type != key_type_ed25519_seed) {
        return make_error(errc::corrupt,
                          "key file " + name + " holds unknown key type " + std::to_string(type));
    }
    key_seed seed{};
    wipe_on_exit<key_seed> wipe_seed{seed};
    std::memcpy(seed.data(), buf.data() + key_magic.size() + 2, seed.size());
    return from_seed(seed);
}

result<identity> identity::load_or_create(const std::filesystem::path& dir, random_source& rng) {
    if (auto s = make_private_dir(dir); !s)
        return s.err();
    auto loaded = load(dir);
    if (loaded.ok() || loaded.err().code != errc::not_found)
        return loaded;

    identity id = generate(rng);
    key_file file{};
    wipe_on_exit<key_file> wipe{file};
    {
        key_seed seed = id.seed();
        wipe_on_exit<key_seed> wipe_seed{seed};
        encode_key_file(seed, file);
    }
    const std::filesystem::path final_path = dir / key_file_name;
    const std::filesystem::path tmp_path =
        dir / (std::string(key_file_name) + ".tmp." + std::to_string(::getpid()));
    const std::string tmp_name = tmp_path.string();
    ::unlink(tmp_path.c_str()); // a leftover from a crash; O_EXCL below needs it gone
    fd_guard fd(
        ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) {
        return make_error(errc::io_error, os_error("cannot create " + tmp_name, errno));
    }
    status written = write_all(fd.get(), file.data(), file.size(), tmp_name);
    if (written && ::fchmod(fd.get(), 0600) != 0) {
        written = make_error(errc::io_error, os_error("cannot chmod " + tmp_name, errno));
    }
    if (written && ::fsync(fd.get()) != 0) {
        written = make_error(errc::io_error, os_error("cannot sync " + tmp_name, errno));
    }
    if (written && ::close(fd.release()) != 0) {
        written = make_error(errc::io_error, os_error("cannot close " + tmp_name, errno));
    }
    if (!written) {
        ::unlink(tmp_path.c_str());
        return written.err();
    }
    // No-replace rename: if another process created a key meanwhile, keep the first one.
    if (::renameat2(AT_FDCWD, tmp_path.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) !=
        0) {
        int err = errno;
        if (err == EINVAL || err == ENOSYS) {
            // The file system cannot do RENAME_NOREPLACE; link() refuses to replace as well.
            err = ::link(tmp_path.c_str(), final_path.c_str()) == 0 ? 0 : errno;
        }
        ::unlink(tmp_path.c_str());
        if (err == EEXIST)
            return load(dir);
        if (err != 0) {
            return make_error(errc::io_error,
                              os_error("cannot rename " + tmp_name + " to key file", err));
        }
    }
    if (auto s = fsync_dir(dir); !s)
        return s.err();
    return id;
}

} // namespace glasnode::overlay
