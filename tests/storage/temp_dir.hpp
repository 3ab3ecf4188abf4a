// A fresh directory under the system temporary directory, removed with its contents on
// destruction; each test gets its own so that tests never share a database.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace glasnode::storage::testing {

class temp_dir {
public:
    temp_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "glasnode-storage-XXXXXX");
        if (char* made = ::mkdtemp(pattern.data())) {
            m_path = made;
        }
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        if (!m_path.empty()) {
            std::filesystem::remove_all(m_path, ec);
        }
    }

    bool ok() const { return !m_path.empty(); }
    const std::filesystem::path& path() const { return m_path; }
    // A database directory inside the temporary directory (not created yet).
    std::filesystem::path db() const { return m_path / "db"; }

private:
    std::filesystem::path m_path;
};

} // namespace glasnode::storage::testing
