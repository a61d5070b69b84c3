//! Pre-trade analytics: what the router knows about an order before it asks anyone.
//!
//! Owns the illiquidity measures (days since the last trade, 30-day ADV, the illiquid flag),
//! the order's size as a share of ADV, the expected market impact by the square-root law and
//! the fair value from a market mid, plus the tolerance test that auto-execution and whisper
//! use. Everything here is a pure function of its inputs: `now` is a parameter, the mid is an
//! input (market data arrives through the TCA work), nothing is read, stored or allocated.
//! The results feed the rule conditions (`crate::select::expr`).
//!
//! Impact model: `impact_bps = Y * sigma_bps * (Q / ADV)^exponent` with `Y`, the exponent and
//! the daily volatilities in config. The square-root form (exponent ~0.5, measured ~0.49 by
//! Sato & Kanazawa; linear for small orders, square-root for large ones, Bucci et al.) is
//! equity evidence: no bond-specific coefficients are published (see
//! `shared/notes/market-figures.md`, "Market impact"), so every coefficient is configurable.

use crate::select::instruments::{AssetClass, Date, Instrument};
use crate::time::Nanos;
use serde::Deserialize;

/// Which way the desk trades: the engine's `Side`.
pub use crate::rfq::types::Side;

/// Daily price volatility by asset class, in bps, for bonds whose row has none.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolatilityBps {
    pub ig_corp: f64,
    pub hy_corp: f64,
    pub muni: f64,
    pub structured: f64,
    pub govt: f64,
}

impl VolatilityBps {
    pub fn of(&self, a: AssetClass) -> f64 {
        match a {
            AssetClass::IgCorp => self.ig_corp,
            AssetClass::HyCorp => self.hy_corp,
            AssetClass::Muni => self.muni,
            AssetClass::Structured => self.structured,
            AssetClass::Govt => self.govt,
        }
    }
}

/// Pre-trade coefficients (the `[pretrade]` table of `config/rules.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretradeConfig {
    /// `Y` of the square-root law (order 1 in the equity literature).
    pub impact_y: f64,
    /// The exponent of `Q / ADV` (0.5 for the square-root law).
    pub impact_exponent: f64,
    /// Daily volatility by asset class when the instrument row has none.
    pub default_daily_vol_bps: VolatilityBps,
    /// A bond that has not traded for more than this many days is illiquid.
    pub illiquid_after_days: f64,
    /// A bond whose 30-day ADV (face) is below this is illiquid.
    pub illiquid_below_adv: f64,
}

impl Default for PretradeConfig {
    fn default() -> Self {
        PretradeConfig {
            impact_y: 1.0,
            impact_exponent: 0.5,
            default_daily_vol_bps: VolatilityBps {
                ig_corp: 40.0,
                hy_corp: 90.0,
                muni: 35.0,
                structured: 60.0,
                govt: 25.0,
            },
            illiquid_after_days: 5.0,
            illiquid_below_adv: 1_000_000.0,
        }
    }
}

/// The order as pre-trade analytics see it.
#[derive(Debug, Clone, Copy)]
pub struct OrderTerms {
    /// `None`: a two-sided request.
    pub side: Option<Side>,
    /// Face amount, in the bond's currency.
    pub size: f64,
    /// The market mid (price per 100 face) when market data has one.
    pub mid: Option<f64>,
}

/// Pre-trade analytics for one order. Quantities that cannot be known are `f64::INFINITY`
/// (e.g. `% of ADV` for a bond with no volume) or `NaN` (no mid); every comparison with NaN
/// is false, so a rule asking about an unknown figure does not fire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreTrade {
    /// Whole days since the last trade; infinite if it never traded.
    pub days_since_last_trade: f64,
    /// The instrument's 30-day ADV (face).
    pub adv_30d: f64,
    /// Order size as a percentage of the 30-day ADV (10.0 means 10%).
    pub pct_adv: f64,
    /// Expected market impact, in bps of price.
    pub impact_bps: f64,
    /// Not traded within `illiquid_after_days`, or ADV below `illiquid_below_adv`.
    pub illiquid: bool,
    /// Years to maturity (negative once matured).
    pub maturity_years: f64,
    /// Fair value: the market mid when one is known (NaN otherwise).
    pub fair_value: f64,
    /// Fair value moved against the order by the expected impact: what the desk should
    /// expect to pay (buy) or receive (sell); NaN without a mid, a side or a finite impact.
    pub expected_price: f64,
    /// Market value: `size * fair_value / 100`, or `size` when there is no mid.
    pub notional: f64,
}

/// The pre-trade analytics of `order` in `instrument` at `now`.
pub fn analyse(
    cfg: &PretradeConfig,
    instrument: &Instrument,
    order: &OrderTerms,
    now: Nanos,
) -> PreTrade {
    let today = Date::from_unix_nanos(now.0);
    let days_since_last_trade = match instrument.last_trade {
        Some(d) => f64::from(today.0.saturating_sub(d.0).max(0)),
        None => f64::INFINITY,
    };
    let adv = instrument.adv_30d;
    let size = if order.size.is_finite() && order.size > 0.0 {
        order.size
    } else {
        0.0
    };
    let ratio = participation(size, adv);
    let sigma = instrument
        .daily_vol_bps
        .unwrap_or_else(|| cfg.default_daily_vol_bps.of(instrument.asset_class));
    let impact_bps = if ratio == 0.0 {
        0.0
    } else {
        cfg.impact_y * sigma * ratio.powf(cfg.impact_exponent)
    };
    let illiquid = days_since_last_trade > cfg.illiquid_after_days || adv < cfg.illiquid_below_adv;
    let maturity_years = f64::from(instrument.maturity.0 - today.0) / 365.25;
    let fair_value = match order.mid {
        Some(m) if m.is_finite() && m > 0.0 => m,
        _ => f64::NAN,
    };
    let expected_price = match order.side {
        Some(side) if impact_bps.is_finite() => fair_value * (1.0 + side.dir() * impact_bps / 1e4),
        _ => f64::NAN,
    };
    let notional = if fair_value.is_nan() {
        size
    } else {
        size * fair_value / 100.0
    };
    PreTrade {
        days_since_last_trade,
        adv_30d: adv,
        pct_adv: ratio * 100.0,
        impact_bps,
        illiquid,
        maturity_years,
        fair_value,
        expected_price,
        notional,
    }
}

/// `size / adv` with the edge cases spelled out: nothing to trade is 0, volume-less bonds
/// are infinitely large orders.
fn participation(size: f64, adv: f64) -> f64 {
    if size == 0.0 {
        0.0
    } else if adv > 0.0 {
        size / adv
    } else {
        f64::INFINITY
    }
}

/// Whether a quote is within `tolerance_bps` of `fair_value` on the desk's side: a buyer
/// accepts prices up to fair value plus the tolerance, a seller down to fair value minus it.
/// Better-than-fair prices are always within. False without a usable fair value.
pub fn within_tolerance(side: Side, quote_px: f64, fair_value: f64, tolerance_bps: f64) -> bool {
    if !(fair_value.is_finite() && fair_value > 0.0 && quote_px.is_finite()) {
        return false;
    }
    let cost_bps = side.dir() * (quote_px - fair_value) / fair_value * 1e4;
    cost_bps <= tolerance_bps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::instruments::{Rating, SecurityMaster};
    use std::path::Path;

    fn bond(adv: f64, last_trade: Option<&str>, vol: Option<f64>) -> Instrument {
        let csv = format!(
            "isin,cusip,issuer,sector,asset_class,currency,coupon_pct,maturity,rating_sp,rating_moodys,rating_fitch,adv_30d,last_trade,daily_vol_bps\n\
             XS9900000019,,Testco,Industrials,hy_corp,USD,5,2031-06-15,BB,Ba2,BB,{adv},{},{}\n",
            last_trade.unwrap_or(""),
            vol.map(|v| v.to_string()).unwrap_or_default()
        );
        let m = SecurityMaster::parse(csv.as_bytes(), Path::new("t.csv")).unwrap();
        m.instruments()[0].clone()
    }

    fn at(date: &str) -> Nanos {
        Nanos(Date::parse(date).unwrap().0 as u64 * 86_400_000_000_000 + 3_600_000_000_000)
    }

    #[test]
    fn square_root_impact_and_pct_adv() {
        let cfg = PretradeConfig::default();
        let b = bond(4_000_000.0, Some("2026-01-02"), Some(50.0));
        assert_eq!(b.rating, Rating::parse_any("BB").unwrap());
        let order = OrderTerms {
            side: Some(Side::Sell),
            size: 1_000_000.0,
            mid: Some(98.0),
        };
        let p = analyse(&cfg, &b, &order, at("2026-01-12"));
        assert_eq!(p.days_since_last_trade, 10.0);
        assert!((p.pct_adv - 25.0).abs() < 1e-12);
        // 1.0 * 50 * sqrt(0.25) = 25 bps
        assert!((p.impact_bps - 25.0).abs() < 1e-9);
        assert!(p.illiquid, "10 days without a trade is illiquid");
        assert_eq!(p.fair_value, 98.0);
        // a seller expects to receive less than the mid
        assert!((p.expected_price - 98.0 * (1.0 - 0.0025)).abs() < 1e-9);
        assert!((p.notional - 980_000.0).abs() < 1e-6);
        assert!((p.maturity_years - 5.42).abs() < 0.01);
    }

    #[test]
    fn unknowns_are_infinite_or_nan() {
        let cfg = PretradeConfig::default();
        let b = bond(0.0, None, None);
        let order = OrderTerms {
            side: None,
            size: 5e6,
            mid: None,
        };
        let p = analyse(&cfg, &b, &order, at("2026-01-12"));
        assert_eq!(p.days_since_last_trade, f64::INFINITY);
        assert_eq!(p.pct_adv, f64::INFINITY);
        assert_eq!(p.impact_bps, f64::INFINITY);
        assert!(p.illiquid);
        assert!(p.fair_value.is_nan() && p.expected_price.is_nan());
        assert_eq!(p.notional, 5e6);
        // default volatility for the asset class when the row has none
        let b = bond(1e8, Some("2026-01-12"), None);
        let p = analyse(
            &cfg,
            &b,
            &OrderTerms { size: 1e6, ..order },
            at("2026-01-12"),
        );
        assert!((p.impact_bps - 90.0 * 0.1).abs() < 1e-9);
        assert!(!p.illiquid);
    }

    #[test]
    fn tolerance_depends_on_side() {
        assert!(within_tolerance(Side::Buy, 100.05, 100.0, 10.0));
        assert!(!within_tolerance(Side::Buy, 100.2, 100.0, 10.0));
        assert!(within_tolerance(Side::Buy, 99.0, 100.0, 0.0));
        assert!(within_tolerance(Side::Sell, 99.95, 100.0, 10.0));
        assert!(!within_tolerance(Side::Sell, 99.8, 100.0, 10.0));
        assert!(!within_tolerance(Side::Sell, 99.95, f64::NAN, 10.0));
    }
}
