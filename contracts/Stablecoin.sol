// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Stablecoin
/// @notice The quote currency of the embedded (development) chain: a plain OpenZeppelin
///         ERC-20 with 6 decimals, like the stablecoins it stands in for. Only the owner
///         (the platform's key) mints; nobody can mint on a chain where it is not deployed.
contract Stablecoin is ERC20, Ownable {
    constructor(string memory name_, string memory symbol_, address initialOwner)
        ERC20(name_, symbol_)
        Ownable(initialOwner)
    {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
