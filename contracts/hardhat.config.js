// Minimal Hardhat config: only `hardhat node` is used (build.js compiles with solcjs).
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
    },
  },
};
