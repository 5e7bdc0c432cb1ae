"""A module that only knows ``logging`` (the capture tests add the WPP side from outside)."""
import logging

log = logging.getLogger("shop.orders")


def place_order(order_id, items, total):
    log.debug("placing order %d with %d item(s)", order_id, len(items))
    for name in items:
        log.info("item %s", name)
    if total > 100:
        log.warning("large order %d: %d cents", order_id, int(total * 100))
    return total
