package actors

import (
	"hash/fnv"

	"github.com/tsunagu/tsunagu/actors/routing"
)

// env is what every machine of a node shares: the routing configuration,
// the protocol timing and the shard map.
type env struct {
	cfg    *routing.Config
	timing Timing
	shards uint32
}

func (e *env) queueShard(name string) uint32 { return ShardOf("q:"+name, e.shards) }
func (e *env) agentShard(id string) uint32   { return ShardOf("a:"+id, e.shards) }

// ShardOf maps a key to one of n shards (FNV-1a). The mapping is part of the
// cluster's identity: it never changes for a given shard count.
func ShardOf(key string, n uint32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % n
}

// QueueShard returns the shard of a queue (and of its contacts).
func QueueShard(name string, n uint32) uint32 { return ShardOf("q:"+name, n) }

// AgentShard returns the shard of an agent.
func AgentShard(id string, n uint32) uint32 { return ShardOf("a:"+id, n) }
