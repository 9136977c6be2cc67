//! The server suite: hosts probe apps in a server and checks it over real sockets.
