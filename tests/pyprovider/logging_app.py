"""An application that only knows ``logging`` (tests/pyprovider/test_logging_handler.py adds the
WPP handler from outside; nothing here refers to wpptrace)."""
import logging

log = logging.getLogger("shop.orders")


def place_order(order_id, items, total):
    log.debug("placing order %d with %d item(s)", order_id, len(items))
    for name in items:
        log.info("item %s (%r)", name, name)
    log.info("total %.2f EUR, discount %5.1f%%, hex id %#x", total, 12.5, order_id)
    if total > 100:
        log.warning("large order %s: %d cents", order_id, int(total * 100))
    log.info("unicode %s and big %d", "caf\u00e9 \u2713", 1 << 70)
    log.info("mapping %(who)s", {"who": "alice"})
    message = "dynamic message %s"
    log.error(message, "not a literal")
    log.log(logging.ERROR + 5, "between levels %s", "ok")
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed for %s", "missing")
