"""Partner REST API for consent: record grants and withdrawals, read state and history."""
