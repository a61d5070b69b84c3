#!/usr/bin/env python3
"""A QuickFIX/C++ initiator (Python binding `quickfix` 1.16.0) playing a trading desk.

It logs on to the acceptor at --host/--port, sends one QuoteRequest (35=R) with one
NoRelatedSym (146) entry per --isin (SecurityID 48 with SecurityIDSource 22=4, OrderQty 38,
Side 54), waits for one Quote (35=S) per entry, checks each (QuoteReqID, SecurityID, Side and
OrderQty echoed, a price on the right side), logs out and exits 0. A QuoteStatusReport
accepting the request (297=0, as a router sends) may come first. Anything else (a Reject,
a BusinessMessageReject, a QuoteRequestReject, a Logout, a timeout, a quote that does not
match) prints the reason and exits 1. Data dictionary validation is on: QuickFIX itself
rejects a malformed Quote before this script sees it (and that Reject fails the run).

With --quotes-per-leg N it waits for N quotes per instrument (several dealers). With --hit it
then lifts (or hits) the best quote of the first instrument with a NewOrderSingle (35=D,
OrdType D "previously quoted", the router's QuoteID) and waits for the ExecutionReport
(35=8) that fills it, checking ClOrdID, OrdStatus 2 and LastPx = the quoted price.

The last line on stdout is ``PASS ...`` or ``FAIL ...``.
"""

import argparse
import os
import queue
import sys
import tempfile
import threading

import quickfix as fix
import quickfix44 as fix44


def default_dictionary():
    for root in (os.environ.get("VIRTUAL_ENV"), sys.prefix):
        if root:
            path = os.path.join(root, "share", "quickfix", "FIX44.xml")
            if os.path.isfile(path):
                return path
    raise SystemExit("qf_desk: FIX44.xml not found; pass --data-dictionary")


def msg_type_of(message):
    return message.getHeader().getField(fix.MsgType().getField())


def show(message):
    return message.toString().replace("\x01", "|")


class DeskApplication(fix.Application):
    def __init__(self):
        super().__init__()
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()
        self.session_id = None
        # (kind, message text): every application message, and admin messages that end the run
        self.inbox = queue.Queue(maxsize=1000)

    def onCreate(self, session_id):
        self.session_id = session_id

    def onLogon(self, session_id):
        self.logged_on.set()

    def onLogout(self, session_id):
        self.logged_out.set()

    def toAdmin(self, message, session_id):
        pass

    def fromAdmin(self, message, session_id):
        msg_type = msg_type_of(message)
        if msg_type in (fix.MsgType_Reject, fix.MsgType_Logout):
            self.inbox.put(("admin", msg_type, show(message), None))

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        self.inbox.put(("app", msg_type_of(message), show(message), fix.Message(message)))


def build_quote_request(args):
    request = fix44.QuoteRequest()
    request.setField(fix.QuoteReqID(args.quote_req_id))
    for isin in args.isin:
        leg = fix44.QuoteRequest.NoRelatedSym()
        leg.setField(fix.Symbol("[N/A]"))
        leg.setField(fix.SecurityID(isin))
        leg.setField(fix.SecurityIDSource(fix.SecurityIDSource_ISIN_NUMBER))
        leg.setField(fix.Side(args.side))
        leg.setField(fix.OrderQty(float(args.qty)))
        request.addGroup(leg)
    return request


def check_quote(quote, args, wanted_isins):
    """Returns the ISIN quoted, or raises ValueError saying what is wrong. `wanted_isins` lists
    each ISIN once per quote still expected."""
    get = lambda tag: quote.getField(tag) if quote.isSetField(tag) else None
    if get(131) != args.quote_req_id:
        raise ValueError("QuoteReqID %r, expected %r" % (get(131), args.quote_req_id))
    if not get(117):
        raise ValueError("no QuoteID")
    isin = get(48)
    if isin not in wanted_isins:
        raise ValueError("SecurityID %r was not requested (or quoted twice)" % isin)
    if get(22) != fix.SecurityIDSource_ISIN_NUMBER:
        raise ValueError("SecurityIDSource %r, expected 4 (ISIN)" % get(22))
    if get(54) is not None and get(54) != args.side:
        raise ValueError("Side %r, expected %r" % (get(54), args.side))
    if get(38) is not None and float(get(38)) != float(args.qty):
        raise ValueError("OrderQty %r, expected %r" % (get(38), args.qty))
    price_tag = 133 if args.side == fix.Side_BUY else 132  # a buyer wants the offer
    price = get(price_tag)
    if price is None or float(price) <= 0:
        raise ValueError("no positive %s (%d)" % ("OfferPx" if price_tag == 133 else "BidPx", price_tag))
    return isin


def accepted(status_report, args):
    """A QuoteStatusReport saying our request was accepted."""
    get = lambda tag: status_report.getField(tag) if status_report.isSetField(tag) else None
    return get(131) == args.quote_req_id and get(297) == "0"


def write_settings(path, args, log_dir):
    lines = [
        "[DEFAULT]",
        "ConnectionType=initiator",
        "SocketConnectHost=%s" % args.host,
        "SocketConnectPort=%d" % args.port,
        "HeartBtInt=%d" % args.heart_bt_int,
        "ReconnectInterval=1",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        "BeginString=FIX.4.4",
        "SenderCompID=%s" % args.sender_comp_id,
        "TargetCompID=%s" % args.target_comp_id,
        "ResetOnLogon=Y",
        "UseDataDictionary=Y",
        "DataDictionary=%s" % args.data_dictionary,
        "FileLogPath=%s" % log_dir,
        "[SESSION]",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def quoted_price(quote, args):
    tag = 133 if args.side == fix.Side_BUY else 132
    return float(quote.getField(tag))


def hit(args, app, quotes):
    """Lifts/hits the best quote on the first instrument; returns None or what went wrong."""
    first = args.isin[0]
    mine = [q for q in quotes if q.getField(48) == first]
    best = (min if args.side == fix.Side_BUY else max)(mine, key=lambda q: quoted_price(q, args))
    price = quoted_price(best, args)
    order = fix44.NewOrderSingle()
    order.setField(fix.ClOrdID("ORD-" + args.quote_req_id))
    order.setField(fix.QuoteID(best.getField(117)))
    order.setField(fix.Symbol("[N/A]"))
    order.setField(fix.SecurityID(first))
    order.setField(fix.SecurityIDSource(fix.SecurityIDSource_ISIN_NUMBER))
    order.setField(fix.Side(args.side))
    order.setField(fix.TransactTime())
    order.setField(fix.OrderQty(float(args.qty)))
    order.setField(fix.OrdType(fix.OrdType_PREVIOUSLY_QUOTED))
    order.setField(fix.Price(price))
    fix.Session.sendToTarget(order, app.session_id)
    print("sent %s" % show(order), flush=True)
    while True:
        try:
            kind, msg_type, text, message = app.inbox.get(timeout=args.timeout)
        except queue.Empty:
            return "no ExecutionReport within %ds" % args.timeout
        if kind == "app" and msg_type == fix.MsgType_ExecutionReport:
            get = lambda tag: message.getField(tag) if message.isSetField(tag) else None
            print("got %s" % text, flush=True)
            if get(11) != "ORD-" + args.quote_req_id:
                return "ExecutionReport for ClOrdID %r: %s" % (get(11), text)
            if get(39) != fix.OrdStatus_FILLED:
                return "ExecutionReport OrdStatus %r, expected 2 (filled): %s" % (get(39), text)
            if get(31) is None or float(get(31)) != price:
                return "LastPx %r, expected the quoted %s: %s" % (get(31), price, text)
            return None
        if kind == "app" and msg_type in (fix.MsgType_Quote, fix.MsgType_QuoteStatusReport):
            continue  # late quotes on other legs, or status reports
        return "unexpected %s message instead of an ExecutionReport: %s" % (msg_type, text)


def run(args, app):
    if not app.logged_on.wait(args.timeout):
        return "no Logon answered within %ds" % args.timeout
    request = build_quote_request(args)
    fix.Session.sendToTarget(request, app.session_id)
    print("sent %s" % show(request), flush=True)
    wanted = [isin for isin in args.isin for _ in range(args.quotes_per_leg)]
    quotes = []
    while wanted:
        try:
            kind, msg_type, text, message = app.inbox.get(timeout=args.timeout)
        except queue.Empty:
            return "no Quote for %s within %ds" % (", ".join(wanted), args.timeout)
        if kind == "app" and msg_type == fix.MsgType_Quote:
            try:
                wanted.remove(check_quote(message, args, wanted))
            except ValueError as e:
                return "bad Quote (%s): %s" % (e, text)
            quotes.append(message)
            print("got %s" % text, flush=True)
        elif kind == "app" and msg_type == fix.MsgType_QuoteStatusReport and accepted(message, args):
            # A router acknowledges the request (QuoteStatus 297=0) before quotes arrive.
            print("got %s" % text, flush=True)
        else:
            return "unexpected %s message instead of a Quote: %s" % (msg_type, text)
    if args.hit:
        return hit(args, app, quotes)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sender-comp-id", default="DESK")
    parser.add_argument("--target-comp-id", default="ROUTER")
    parser.add_argument("--isin", action="append", help="repeat for more legs")
    parser.add_argument("--qty", default="1000000")
    parser.add_argument("--side", default=fix.Side_BUY, choices=(fix.Side_BUY, fix.Side_SELL))
    parser.add_argument("--quote-req-id", default="RFQ-1")
    parser.add_argument("--quotes-per-leg", type=int, default=1)
    parser.add_argument("--hit", action="store_true", help="trade the best quote of the first leg")
    parser.add_argument("--heart-bt-int", type=int, default=30)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per wait")
    parser.add_argument("--data-dictionary", default=None)
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args()
    args.isin = args.isin or ["XS1234567890"]
    args.data_dictionary = args.data_dictionary or default_dictionary()
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="qf_desk_")
    os.makedirs(log_dir, exist_ok=True)

    cfg = os.path.join(log_dir, "desk.cfg")
    write_settings(cfg, args, log_dir)
    settings = fix.SessionSettings(cfg)
    app = DeskApplication()
    initiator = fix.SocketInitiator(
        app, fix.MemoryStoreFactory(), settings, fix.FileLogFactory(settings)
    )
    initiator.start()
    try:
        failure = run(args, app)
        if failure is None and app.session_id is not None:
            fix.Session.lookupSession(app.session_id).logout("done")
            if not app.logged_out.wait(args.timeout):
                failure = "no Logout answered within %ds" % args.timeout
    finally:
        initiator.stop()
    if failure:
        print("FAIL desk %s -> %s: %s (logs in %s)" % (
            args.sender_comp_id, args.target_comp_id, failure, log_dir), flush=True)
        return 1
    print("PASS desk %s -> %s: %d quote(s) for %s" % (
        args.sender_comp_id, args.target_comp_id, len(args.isin), args.quote_req_id), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
