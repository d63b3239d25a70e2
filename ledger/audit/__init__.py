"""Finance-grade audit: the tamper-evident hash chain over every stored event,
its verification, customer statements and the specialist's replay."""
