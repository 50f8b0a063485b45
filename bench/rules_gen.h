/* rules_gen.h - the events and rules the rule benchmarks share (#17):
 * EventBridge-shaped events of ~460 bytes and body patterns as EventBridge
 * users write them: source + detail-type + one nested detail field (exact,
 * prefix or numeric), 1 in 50 events matching each rule.
 */
#ifndef SL_BENCH_RULES_GEN_H
#define SL_BENCH_RULES_GEN_H

#include <stdint.h>
#include <stdio.h>

/* Event i as JSON into out (cap bytes); its length, or < 0. */
static inline int rules_gen_event(uint32_t i, char *out, size_t cap)
{
    return snprintf(
        out, cap,
        "{\"version\": \"0\", \"id\": \"%08x-b491-4cf7-a9f1-bf3703467718\", \"detail-type\": "
        "\"Order %s\", \"source\": \"shop.service%u\", \"account\": \"111122223333\", "
        "\"time\": \"2026-12-06T10:%02u:%02uZ\", \"region\": \"eu-west-1\", \"resources\": "
        "[\"arn:sluice:shop:eu-west-1:111122223333:order/%u\"], \"detail\": {\"order-id\": "
        "\"o-%u\", \"state\": \"%s\", \"amount\": %u.%02u, \"currency\": \"EUR\", "
        "\"customer\": {\"id\": \"c-%u\", \"tier\": \"%s\"}, \"items\": [{\"sku\": \"s-%u\", "
        "\"qty\": %u}, {\"sku\": \"s-%u\", \"qty\": 1}]}}",
        i * 2654435761u,
        i % 3 == 0   ? "Created"
        : i % 3 == 1 ? "Shipped"
                     : "Cancelled",
        i % 50, i % 60, i % 60, i, i, i % 2 ? "shipped" : "pending", i % 1000, i % 100, i % 977,
        i % 4 ? "silver" : "gold", i % 313, i % 7 + 1, i % 211);
}

/* Rule r's pattern (body scope) into out (cap bytes). */
static inline void rules_gen_pattern(uint32_t r, char *out, size_t cap)
{
    const char *dt = r % 3 == 0   ? "Order Created"
                     : r % 3 == 1 ? "Order Shipped"
                                  : "Order Cancelled";
    switch (r % 3) {
    case 0:
        snprintf(out, cap,
                 "{\"source\": [\"shop.service%u\"], \"detail-type\": [\"%s\"], \"detail\": "
                 "{\"customer\": {\"tier\": [\"gold\", \"silver\"]}}}",
                 r % 50, dt);
        break;
    case 1:
        snprintf(out, cap,
                 "{\"source\": [{\"prefix\": \"shop.service%u\"}], \"detail-type\": [\"%s\"], "
                 "\"detail\": {\"state\": [{\"anything-but\": \"pending\"}]}}",
                 r % 50, dt);
        break;
    default:
        snprintf(
            out, cap,
            "{\"source\": [\"shop.service%u\"], \"detail\": {\"amount\": [{\"numeric\": "
            "[\">\", 100, \"<=\", 900]}], \"items\": {\"qty\": [{\"numeric\": [\">=\", 1]}]}}}",
            r % 50);
        break;
    }
}

#endif
