// Package redistest starts real redis-server processes for tests.
//
// Tests use a real Redis rather than a fake because what they check — one
// round trip per call, failing fast while Redis is down, recovering when it
// comes back — lives in the client and the wire, which a fake would not have.
//
// Start gives a test a Redis URL: a fresh redis-server on 127.0.0.1 and a
// free port, without persistence, stopped when the test ends; or, when
// $TSUNAGU_REDIS_URL is set, that shared server (tests then keep their data
// apart with KeyPrefix, since nothing is flushed). StartServer always starts
// a process, for tests that stop and restart Redis on the same port.
//
// The redis-server binary is $TSUNAGU_REDIS_SERVER or the one on $PATH. A
// missing binary fails the test rather than skipping it, so a suite never
// passes by testing nothing; install it with `apt-get install redis-server`.
package redistest
