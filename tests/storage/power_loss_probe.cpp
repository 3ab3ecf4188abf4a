// Child process of the power-loss shim's own test. Usage: storage_power_loss_probe DIR
//
// Writes DIR/data.mdb the ways LMDB does (pwrite, lseek + writev, write, fdatasync, pwrite on
// a second O_DSYNC descriptor), in a fixed order that the test knows:
//   1. pwrite 6000 x 'A' at 0, fdatasync                  (sync 1: durable)
//   2. pwrite 100 x 'B' at 50                              (data 2)
//   3. lseek 5000, writev 2000 x 'C' + 3000 x 'C'          (data 3: grows the file to 10000)
//   4. pwrite 10 x 'D' at 4090 through the O_DSYNC descriptor (meta 1: durable, spans 2 pages)
//   5. write 20 x 'E' at the offset writev left (10000)    (data 4)
//   6. fdatasync                                          (sync 2)
// and exits 0, unless the shim cuts the power first.
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/uio.h>
#include <unistd.h>

namespace {

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

void write_all(ssize_t got, std::size_t want, const char* what) {
    if (got != static_cast<ssize_t>(want))
        die(what);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: storage_power_loss_probe DIR\n");
        return 2;
    }
    const std::string file = std::string(argv[1]) + "/data.mdb";
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        die("open");
    const std::string a(6000, 'A'), b(100, 'B'), c1(2000, 'C'), c2(3000, 'C'), d(10, 'D'),
        e(20, 'E');
    write_all(::pwrite(fd, a.data(), a.size(), 0), a.size(), "pwrite A");
    if (::fdatasync(fd) != 0)
        die("fdatasync 1");
    write_all(::pwrite(fd, b.data(), b.size(), 50), b.size(), "pwrite B");
    if (::lseek(fd, 5000, SEEK_SET) != 5000)
        die("lseek");
    const iovec iov[2] = {{const_cast<char*>(c1.data()), c1.size()},
                          {const_cast<char*>(c2.data()), c2.size()}};
    write_all(::writev(fd, iov, 2), c1.size() + c2.size(), "writev C");
    const int dsync = ::open(file.c_str(), O_WRONLY | O_DSYNC | O_CLOEXEC);
    if (dsync < 0)
        die("open O_DSYNC");
    write_all(::pwrite(dsync, d.data(), d.size(), 4090), d.size(), "pwrite D");
    write_all(::write(fd, e.data(), e.size()), e.size(), "write E");
    if (::fdatasync(fd) != 0)
        die("fdatasync 2");
    ::close(dsync);
    ::close(fd);
    return 0;
}
