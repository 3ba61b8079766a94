"""Price-feed adapters: ``ChainlinkPriceFeed`` (an AggregatorV3Interface contract read with
web3) and ``HttpJsonPriceFeed`` (a JSON endpoint read with httpx)."""
