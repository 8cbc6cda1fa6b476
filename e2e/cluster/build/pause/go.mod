// The pod sandbox's pause process (e2e/cluster/install-deps.sh).
module bereit.dev/e2e/build/pause

go 1.25.0
