"""SNS gateway adapters: ``HttpSnsGateway`` (httpx, with a certificate cache) and memory."""
