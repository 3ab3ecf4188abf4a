// The node daemon: wires identity, storage and the network services onto one io_context.
//
// start() binds every listener (so a taken port fails at once, with the port named) and
// returns; the caller runs io() until stop(), then calls close(). Not copyable or movable.
#pragma once

#include <memory>
#include <string>

#include "node/asio.hpp"
#include "node/settings.hpp"
#include "overlay/identity/identity.hpp"
#include "storage/result.hpp"

namespace glasnode::node {

class daemon {
public:
    daemon(settings s, overlay::identity id);
    ~daemon();
    daemon(const daemon&) = delete;
    daemon& operator=(const daemon&) = delete;

    status start();
    // On io()'s thread. Stops accepting and ends every connection and test, in whatever state
    // (mid-handshake, queued, mid-flow): io() then runs out of work and returns promptly.
    void stop();
    // After io() has returned: commits the results still queued for the database and closes
    // it. Idempotent; the destructor does it too.
    void close();
    boost::asio::io_context& io();
    // "glasnode ready control=ADDR:PORT ... id=HEX": printed once every listener is bound.
    std::string ready_line() const;
    boost::asio::ip::tcp::endpoint control_endpoint() const;

private:
    struct impl;
    std::unique_ptr<impl> m;
};

} // namespace glasnode::node
