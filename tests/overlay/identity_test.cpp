#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "overlay/identity/identity.hpp"

namespace glasnode::overlay {
namespace {

namespace fs = std::filesystem;

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "glasnode-identity-XXXXXX").string();
        char* made = ::mkdtemp(tmpl.data());
        EXPECT_NE(made, nullptr);
        m_path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

bytes read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const bytes& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
}

TEST(identity, create_persist_reload) {
    temp_dir tmp;
    const fs::path dir = tmp.path() / "data" / "node";
    seeded_random rng(1);
    auto created = identity::load_or_create(dir, rng);
    ASSERT_TRUE(created.ok()) << created.err().describe();

    const fs::path key = dir / key_file_name;
    ASSERT_TRUE(fs::exists(key));
    EXPECT_EQ(mode_of(key), 0600u);
    EXPECT_EQ(mode_of(dir), 0700u);
    EXPECT_EQ(fs::file_size(key), key_file_size);
    // Only the key file: no temp file left behind.
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);

    seeded_random other(2);
    auto again = identity::load_or_create(dir, other);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->key(), created->key());
    auto loaded = identity::load(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.err().describe();
    EXPECT_EQ(loaded->key(), created->key());
    EXPECT_EQ(node_id_string(loaded->key()), to_hex(created->key()));

    // The file holds the seed, not the 64-byte secret key, and the seed rebuilds the pair.
    EXPECT_EQ(identity::from_seed(loaded->seed()).key(), created->key());
    const bytes file = read_file(key);
    const key_seed seed = created->seed();
    EXPECT_TRUE(std::search(file.begin(), file.end(), seed.begin(), seed.end()) != file.end());
}

TEST(identity, missing_key_is_not_found) {
    temp_dir tmp;
    auto r = identity::load(tmp.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::not_found);
}

TEST(identity, refuses_a_key_file_others_can_read) {
    temp_dir tmp;
    seeded_random rng(3);
    ASSERT_TRUE(identity::load_or_create(tmp.path(), rng).ok());
    const fs::path key = tmp.path() / key_file_name;
    for (mode_t mode : {0644u, 0640u, 0604u, 0620u}) {
        ASSERT_EQ(::chmod(key.c_str(), mode), 0);
        auto r = identity::load(tmp.path());
        ASSERT_FALSE(r.ok()) << std::oct << mode;
        EXPECT_EQ(r.err().code, errc::invalid_argument);
        char expected[8];
        std::snprintf(expected, sizeof expected, "%04o", static_cast<unsigned>(mode));
        EXPECT_NE(r.err().reason.find(std::string("mode ") + expected), std::string::npos)
            << r.err().reason;
        // load_or_create must not replace it either.
        seeded_random other(4);
        EXPECT_FALSE(identity::load_or_create(tmp.path(), other).ok());
    }
    ASSERT_EQ(::chmod(key.c_str(), 0400), 0);
    EXPECT_TRUE(identity::load(tmp.path()).ok());
}

TEST(identity, corrupt_and_foreign_files_are_detected) {
    temp_dir tmp;
    seeded_random rng(5);
    ASSERT_TRUE(identity::load_or_create(tmp.path(), rng).ok());
    const fs::path key = tmp.path() / key_file_name;
    const bytes good = read_file(key);
    ASSERT_EQ(good.size(), key_file_size);

    auto expect_code = [&](const bytes& content, errc code, const char* what) {
        write_file(key, content);
        ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
        auto r = identity::load(tmp.path());
        ASSERT_FALSE(r.ok()) << what;
        EXPECT_EQ(r.err().code, code) << what << ": " << r.err().describe();
    };
    for (std::size_t i = 0; i < good.size(); ++i) {
        bytes damaged = good;
        damaged[i] ^= 0x01;
        // Byte 8 is the format version: a different version is reported as such.
        expect_code(damaged, i == 8 ? errc::unsupported_version : errc::corrupt, "flipped byte");
    }
    expect_code({}, errc::corrupt, "empty");
    expect_code(bytes(good.begin(), good.end() - 1), errc::corrupt, "truncated");
    bytes longer = good;
    longer.push_back(0);
    expect_code(longer, errc::corrupt, "extended");
    expect_code(bytes(key_file_size, 0x41), errc::corrupt, "foreign");
    // The seed must never show up in a reason.
    write_file(key, bytes(good.begin(), good.end() - 1));
    auto r = identity::load(tmp.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().reason.find(to_hex(byte_view(good).subspan(10, 32))), std::string::npos);

    write_file(key, good);
    ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
    EXPECT_TRUE(identity::load(tmp.path()).ok());
}

TEST(identity, refuses_a_symlinked_key_file) {
    temp_dir tmp;
    seeded_random rng(6);
    const fs::path real = tmp.path() / "real";
    ASSERT_TRUE(identity::load_or_create(real, rng).ok());
    const fs::path linked = tmp.path() / "linked";
    fs::create_directory(linked);
    fs::create_symlink(real / key_file_name, linked / key_file_name);
    auto r = identity::load(linked);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
}

TEST(identity, sign_and_verify) {
    seeded_random rng(7);
    const identity id = identity::generate(rng);
    const identity other = identity::generate(rng);
    EXPECT_NE(id.key(), other.key());
    bytes message(32);
    for (std::size_t i = 0; i < message.size(); ++i)
        message[i] = static_cast<std::uint8_t>(i);
    const signature sig = id.sign(message);
    ASSERT_TRUE(verify(id.key(), message, sig));
    EXPECT_FALSE(verify(other.key(), message, sig));
    EXPECT_TRUE(verify(id.key(), {}, id.sign({})));

    for (std::size_t bit = 0; bit < message.size() * 8; ++bit) {
        bytes m = message;
        m[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verify(id.key(), m, sig)) << "message bit " << bit;
    }
    for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
        signature s = sig;
        s[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verify(id.key(), message, s)) << "signature bit " << bit;
    }
    for (std::size_t bit = 0; bit < id.key().size() * 8; ++bit) {
        public_key k = id.key();
        k[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verify(k, message, sig)) << "key bit " << bit;
    }
}

TEST(identity, from_seed_is_deterministic_and_copies_sign_alike) {
    key_seed seed{};
    seed.fill(0x11);
    const identity a = identity::from_seed(seed);
    identity b = identity::from_seed(seed);
    EXPECT_EQ(a.key(), b.key());
    EXPECT_EQ(a.seed(), seed);
    const identity c = b; // copies carry the secret
    EXPECT_EQ(c.sign(as_bytes("x")), a.sign(as_bytes("x")));
    EXPECT_EQ(short_id(a.key()).size(), 16u);
    EXPECT_EQ(short_id(a.key()), node_id_string(a.key()).substr(0, 16));
}

} // namespace
} // namespace glasnode::overlay
