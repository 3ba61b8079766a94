"""ERC-3643 (T-REX) market tokens: the packaged artifacts and a sync deployer over ``web3``."""
