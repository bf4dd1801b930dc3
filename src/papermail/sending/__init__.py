"""The send ledger every outgoing row follows, digests and confirmations alike: claim, hand-over, outcome."""
