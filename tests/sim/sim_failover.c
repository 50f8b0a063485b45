/* placeholder, replaced below */
#include "tests/sim/sim.h"
int sim_failover_bench(uint32_t shards, bool trace);
int sim_failover_bench(uint32_t shards, bool trace)
{
    (void)shards;
    (void)trace;
    return 0;
}
