// Exact decimal strings with BigInt: amounts never pass through JS floating point numbers.
// A decimal here is a plain non-negative string such as "12.50": digits, an optional point
// and fraction, no sign, no exponent (the API's own wire format).

const DECIMAL_RE = /^(\d+)(?:\.(\d+))?$/;

export function isDecimal(text) {
  return typeof text === "string" && DECIMAL_RE.test(text);
}

export function places(text) {
  const m = DECIMAL_RE.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  return m[2] ? m[2].length : 0;
}

// The integer number of 10^-scale units in text; throws if text has more places than scale.
export function toUnits(text, scale) {
  const m = DECIMAL_RE.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  const frac = m[2] || "";
  if (frac.length > scale) throw new Error(`${text} has more than ${scale} decimal places`);
  return BigInt(m[1] + frac.padEnd(scale, "0"));
}

// units x 10^-scale as a string with exactly `scale` places ("-" for negatives).
export function fromUnits(units, scale) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${whole}${scale > 0 ? `.${frac}` : ""}`;
}

function common(a, b) {
  const scale = Math.max(places(a), places(b));
  return [toUnits(a, scale), toUnits(b, scale), scale];
}

export function compare(a, b) {
  const [x, y] = common(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function subtract(a, b) {
  const [x, y, scale] = common(a, b);
  return fromUnits(x - y, scale);
}

export function add(a, b) {
  const [x, y, scale] = common(a, b);
  return fromUnits(x + y, scale);
}

export function multiply(a, b) {
  const pa = places(a);
  const pb = places(b);
  return fromUnits(toUnits(a, pa) * toUnits(b, pb), pa + pb);
}

export function isZero(a) {
  return toUnits(a, places(a)) === 0n;
}

// Whether value is a whole multiple of step (both decimal strings).
export function isMultipleOf(value, step) {
  const [x, y] = common(value, step);
  return y !== 0n && x % y === 0n;
}

// Trailing zeros of the fraction dropped ("1.500" -> "1.5", "2.00" -> "2").
export function trim(text) {
  if (!text.includes(".")) return text;
  return text.replace(/0+$/, "").replace(/\.$/, "");
}

// The checks the service makes on an order's numbers, made before sending so the user sees
// them next to the field: {field: message}. pair: the pair as GET /trading/pairs answers it.
export function checkOrder(pair, order) {
  const errors = {};
  const tickPlaces = places(pair.tickSize);
  const lotPlaces = places(pair.lotSize);
  const priced = order.type === "LIMIT" || order.type === "STOP_LIMIT";
  const checkPrice = (name, value, label) => {
    if (!value) errors[name] = `${label} is required`;
    else if (!isDecimal(value)) errors[name] = `${label} must be a plain decimal such as 12.50`;
    else if (places(value) > tickPlaces) errors[name] = `${label} has at most ${tickPlaces} decimal places`;
    else if (isZero(value)) errors[name] = `${label} must be above zero`;
    else if (!isMultipleOf(value, pair.tickSize)) errors[name] = `${label} must be a multiple of the tick ${pair.tickSize}`;
  };
  if (priced) checkPrice("price", order.price, "Price");
  if (order.type === "STOP_LIMIT") checkPrice("stopPrice", order.stopPrice, "Stop price");
  const byFunds = order.type === "MARKET" && order.side === "BUY" && order.quoteAmount;
  if (byFunds) {
    if (!isDecimal(order.quoteAmount) || isZero(order.quoteAmount)) errors.quoteAmount = "Funds must be a decimal above zero";
  } else if (!order.quantity) {
    errors.quantity = "Quantity is required";
  } else if (!isDecimal(order.quantity)) {
    errors.quantity = "Quantity must be a plain decimal such as 1.5";
  } else if (places(order.quantity) > lotPlaces) {
    errors.quantity = `Quantity has at most ${lotPlaces} decimal places`;
  } else if (isZero(order.quantity)) {
    errors.quantity = "Quantity must be above zero";
  } else if (!isMultipleOf(order.quantity, pair.lotSize)) {
    errors.quantity = `Quantity must be a multiple of the lot ${pair.lotSize}`;
  } else if (pair.minQuantity && compare(order.quantity, pair.minQuantity) < 0) {
    errors.quantity = `Quantity must be at least ${pair.minQuantity}`;
  } else if (pair.maxQuantity && compare(order.quantity, pair.maxQuantity) > 0) {
    errors.quantity = `Quantity must be at most ${pair.maxQuantity}`;
  }
  if (order.postOnly && order.timeInForce !== "GTC") errors.timeInForce = "Post-only orders are GTC";
  if (order.postOnly && order.type === "MARKET") errors.postOnly = "A market order cannot be post-only";
  return errors;
}
