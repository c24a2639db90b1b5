"""Column and item indices shared by ``compile/`` (which writes the arrays) and ``kernels/``
(which reads them). Plain module-level ints: numba folds them as compile-time constants.

Axis names used in shapes: P paths, T payment periods, N obligors, J tranches, F fees,
A accounts, S supports, G triggers, W waterfalls (3: normal, accelerated, post_default),
K steps, R tranche groups.
"""

# --- pool flows per path and period: pool_flows[p, item, t] (yuan) --------------------------
PF_INTEREST = 0  # interest collected
PF_SCHED_PRIN = 1  # scheduled principal collected
PF_PREPAY = 2  # prepaid principal
PF_DEFAULT = 3  # principal balance newly defaulted (leaves the performing pool)
PF_RECOVERY = 4  # recovery cash received
PF_LOSS = 5  # realised loss: defaulted less recovery, booked when recovered (or, if that is
#              after legal final, the whole defaulted amount in the final period)
PF_PENDING_RECOVERY = 6  # recoveries still to come at the end of period t: cash of receivables
#              that defaulted in a period <= t and arrives in a period in (t, T); what a
#              write-off may count on and what a clean-up call buys at recovery value
N_PF = 7

#: one fen (yuan): amounts below it are zero when a loss, shortfall or support draw is judged
FEN = 0.01
#: a rate within this of a trigger's threshold is at it, not above: a cumulative default rate
#: summed to 0.16600000000000004 for a threshold of 0.166 had fired the trigger
RATE_TIE = 1e-12

# --- the collateral kernel's schedule table: CollateralModel.sched[row, t, SC_*] (yuan) -------
SC_INTEREST = 0  # scheduled interest in period t
SC_PRINCIPAL = 1  # scheduled principal in period t
SC_AFTER = 2  # scheduled balance after period t's principal (balance - principal)
SC_BALANCE = 3  # scheduled balance at the start of period t
N_SC = 4

# --- bounds on each class's conditional PD over cells of its factor (CollateralModel) -----------
#: ``class_pd_bound[row, c]``: row 0 bounds nothing (a factor below PD_BOUND_Z_LO); row
#: r = 1 .. CELLS + 1 holds for a factor in [Z_LO + (r - 1)·DZ, Z_LO + r·DZ), the last row
#: for any factor above its left end. A table of one row: no bounds (the Student-t copula,
#: or more than PD_BOUND_MAX_CLASSES classes)
PD_BOUND_Z_LO = -4.0
PD_BOUND_DZ = 0.25
PD_BOUND_CELLS = 32
#: more classes than this, no bounds: a table row per path streamed from memory cost more
#: than the erfc it saved (100,000 classes: 12% slower draws; 6 classes: 10-25% faster)
PD_BOUND_MAX_CLASSES = 4096
#: ``class_pd_band[row, c, t]`` (lower, upper): bounds on class c's conditional PD by each
#: period t over the same cells (row 0 again bounds nothing), which decide most of a
#: defaulter's binary search over periods without an erfc; a table of more doubles than
#: this (C·T·(CELLS + 2)·2; 256 KB), or no PD bounds: a table of one row, no bands
PD_BAND_MAX_DOUBLES = 32_768

# --- Monte Carlo model codes (MonteCarloModel.copula, .recovery_kind) ---------------------------
COPULA_GAUSSIAN = 0
COPULA_STUDENT_T = 1
#: under importance sampling with a mixing scale c (Student-t), the share of paths that draw
#: the mixing variable W as the model does (the rest draw c·W): a defensive mixture, whose
#: likelihood ratio for W is at most 1 / this whatever c is
IS_MIX_DEFENSIVE = 0.1
RECOVERY_RATE = 0  # a fixed rate of the exposure
RECOVERY_IP = 1  # the pledged IP's shocked value less haircut and disposal cost

# --- tranche parameters: tranche_f[j, col] (float), tranche_i[j, col] (int) -----------------
TF_BALANCE = 0
TF_FIXED_RATE = 1
TF_SPREAD = 2
TF_FLOOR = 3  # -inf when none
TF_CAP = 4  # +inf when none
TF_STEP_SPREAD = 5
N_TF = 6
TI_COUPON_KIND = 0  # COUPON_*
TI_STEP_PERIOD = 1  # 0-based period from which the step-up applies (T when none)
TI_PRINCIPAL_KIND = 2  # PRIN_*
TI_INTEREST_ON_SHORTFALL = 3
# the tranche's class (``pari_passu``: one rank, drawn for and written down by balance
# together) as its first tranche and one past its last: itself and j + 1 for a class alone
TI_CLASS = 4
TI_CLASS_END = 5
# the tranche's run of consecutive pro-rata tranches (principal due shared by balance; a
# sequential step of mixed kinds pays it so), likewise: itself and j + 1 for any other kind
TI_RUN = 6
TI_RUN_END = 7
N_TI = 8
COUPON_FIXED = 0
COUPON_FLOATING = 1
COUPON_NONE = 2
PRIN_SEQUENTIAL = 0
PRIN_PRO_RATA = 1
PRIN_TARGET = 2
PRIN_RESIDUAL = 3

# --- fee parameters -----------------------------------------------------------------------------
FF_RATE = 0
FF_FIXED = 1
FF_FLOOR = 2  # 0 when none
FF_CAP = 3  # +inf when none
N_FF = 4
FI_BASE_KIND = 0  # BASE_*
FI_BASE_TRANCHE = 1
N_FI = 2
BASE_POOL = 0
BASE_NOTES = 1
BASE_ORIGINAL_POOL = 2
BASE_TRANCHE = 3

# --- account (reserve) parameters --------------------------------------------------------------
AF_AMOUNT = 0
AF_RATE = 1
AF_FLOOR = 2
AF_INITIAL = 3
N_AF = 4
AI_TARGET_KIND = 0  # TARGET_*
AI_OF_KIND = 1  # BASE_*
AI_OF_TRANCHE = 2
AI_GROUP = 3  # tranche group for next-period interest
AI_INCLUDE_FEES = 4
N_AI = 5
TARGET_FIXED = 0
TARGET_PERCENT = 1
TARGET_NEXT_INTEREST = 2

# --- support parameters ---------------------------------------------------------------------------
SF_CAP = 0  # +inf when none
SF_SHARE = 1
N_SF = 2
SI_KIND = 0  # SUPPORT_*
SI_GROUP = 1
SI_COVERS = 2  # COVERS_*
SI_LAG = 3
N_SI = 4
SUPPORT_SHORTFALL = 0  # shortfall undertaking or guarantee
SUPPORT_COMPENSATION = 1  # loss compensation fund / insurance
COVERS_INTEREST = 0
COVERS_PRINCIPAL = 1
COVERS_BOTH = 2

# --- trigger parameters ---------------------------------------------------------------------------
GF_THRESHOLD = 0
N_GF = 1
GI_KIND = 0  # TRIG_*
GI_PERIODS = 1
GI_SUPPORT = 2
GI_GROUP = 3
GI_EFFECT = 4  # EFFECT_*
GI_CURABLE = 5
GI_ACCOUNT = 6
N_GI = 7
TRIG_CUM_DEFAULT = 0
TRIG_COVERAGE = 1
TRIG_SUPPORT_DEFAULT = 2
TRIG_MISSED_INTEREST = 3
EFFECT_ACCELERATE = 1
EFFECT_EVENT_OF_DEFAULT = 2
EFFECT_TRAP = 3

# --- waterfall opcode table: ops[w, k, col] ------------------------------------------------------
STATUS_NORMAL = 0
STATUS_ACCELERATED = 1
STATUS_POST_DEFAULT = 2
N_STATUS = 3
OP_PAY_FEE = 1  # a = fee
OP_PAY_INTEREST = 2  # a = group, b = mode
OP_PAY_PRINCIPAL = 3  # a = group, b = mode, c = amount kind
OP_FUND_RESERVE = 4  # a = account
OP_DRAW_RESERVE = 5  # a = account, b = group, c = covers (COVERS_INTEREST / COVERS_PRINCIPAL)
OP_DRAW_SUPPORT = 6  # a = support
OP_WRITE_OFF = 7
OP_PAY_RESIDUAL = 8  # a = tranche
OPC_CODE = 0
OPC_A = 1
OPC_B = 2
OPC_C = 3
N_OPC = 4
MODE_PRO_RATA = 0
MODE_SEQUENTIAL = 1  # in order; a pay_principal step pays a pro-rata run it lists by balance
MODE_IN_ORDER = 2  # pay_principal with mode = "sequential" given: strictly in list order
AMOUNT_PRINCIPAL_DUE = 0
AMOUNT_AVAILABLE = 1

# --- ledgers (yuan unless stated) ----------------------------------------------------------------
# tranche ledger [t, j, item]
LT_BALANCE_START = 0
LT_COUPON_RATE = 1  # annual decimal
LT_INTEREST_DUE = 2  # current + carried shortfall
LT_INTEREST_PAID = 3
LT_INTEREST_SHORTFALL = 4  # unpaid at period end (carried forward)
LT_PRINCIPAL_DUE = 5
LT_PRINCIPAL_PAID = 6
LT_WRITE_DOWN = 7
LT_BALANCE_END = 8
LT_FROM_RESERVE = 9  # part of interest/principal paid that came from a reserve draw
LT_FROM_SUPPORT = 10  # part of interest/principal paid that came from a support draw
LT_RESIDUAL_PAID = 11
LT_COVERAGE_RATIO = 12  # available funds / obligations senior to and including j (NaN if none)
N_LT = 13
# fee ledger [t, f, item]
LF_DUE = 0
LF_PAID = 1
LF_UNPAID = 2
N_LF = 3
# account ledger [t, a, item]
LA_BALANCE_START = 0
LA_TARGET = 1
LA_DEPOSIT = 2
LA_WITHDRAWAL = 3
LA_BALANCE_END = 4
N_LA = 5
# support ledger [t, s, item]
LS_REQUESTED = 0  # amount asked of the provider
LS_PAID = 1  # amount the provider paid into the trust
LS_CUMULATIVE = 2
LS_PROVIDER_DEFAULTED = 3  # 1.0 once the provider has defaulted
N_LS = 4
# period (deal) ledger [t, item]
LP_POOL_START = 0
LP_INTEREST = 1
LP_SCHED_PRIN = 2
LP_PREPAY = 3
LP_DEFAULT = 4
LP_RECOVERY = 5
LP_LOSS = 6
LP_POOL_END = 7
LP_COMPENSATION = 8
LP_CALL_PROCEEDS = 9
LP_CASH_START = 10  # cash carried from the previous period
LP_AVAILABLE = 11  # available funds: cash carried + collections + compensation + call proceeds
LP_COVERAGE_RATIO = 12  # the deal's headline coverage ratio
LP_STATUS = 13  # STATUS_* of the waterfall that ran
LP_TRAPPED = 14  # excess spread trapped into an account
LP_CASH_END = 15  # cash left unallocated, carried to the next period
LP_CUM_DEFAULT_RATIO = 16
LP_CASH_IN = 17  # collections + compensation + call proceeds + support paid
LP_PAID_OUT = 18  # fees + interest + principal + residual paid
LP_CASH_RELEASED = 19  # final (or call) period: cash left after the waterfall, released from
#                        the trust to the seller (a deal without pay_residual leaves some)
N_LP = 20

# --- per-path summaries --------------------------------------------------------------------------
# tranche summary [j, item]
ST_PRINCIPAL_PAID = 0
ST_INTEREST_PAID = 1
ST_LOSS = 2  # principal written down or unpaid at the end
ST_INTEREST_SHORTFALL = 3  # interest unpaid at the end
ST_WAL_YEARS = 4  # principal-weighted years from closing (NaN if no principal paid)
ST_MIN_COVERAGE = 5  # minimum coverage ratio over periods with a balance outstanding
ST_FROM_SUPPORT = 6
ST_FROM_RESERVE = 7
ST_RESIDUAL_PAID = 8
ST_FIRST_SHORTFALL_PERIOD = 9  # 0-based period of the first interest shortfall; -1 none
N_ST = 10
# pool/deal summary [item]
SP_DEFAULT = 0
SP_RECOVERY = 1
SP_LOSS = 2
SP_PREPAY = 3
SP_COMPENSATION = 4
SP_SUPPORT_PAID = 5
SP_MAX_STATUS = 6
SP_FIRST_TRIGGER_PERIOD = 7  # 0-based period the status first left normal; -1 never
SP_CALL_PERIOD = 8  # -1 when not called
SP_MIN_COVERAGE = 9
SP_CASH_RELEASED = 10  # cash released from the trust after the final period (yuan)
N_SP = 11

# --- Monte Carlo per-path metrics: metrics[j * N_MT + item] for tranche j, then pool ----------
MT_PV_LOSS = 0  # max(0, balance - PV of cash received at the tranche coupon) / balance
MT_LOSS = 1  # principal lost / balance
MT_DEFAULT = 2  # 1.0 if any interest shortfall or principal loss, else 0.0
MT_PRINCIPAL = 3  # principal received (yuan)
MT_INTEREST = 4  # interest received (yuan)
MT_WAL = 5  # years from closing, principal-weighted (NaN if none paid)
MT_IRR = 6  # flat annual yield, compounding each period at its accrual fraction
MT_MIN_COVERAGE = 7
MT_SUPPORT = 8  # support received (yuan)
MT_RESIDUAL = 9  # residual cash received (yuan)
N_MT = 10
MP_DEFAULT_COUNT = 0
MP_DEFAULT_RATE = 1  # defaulted balance / original pool
MP_LOSS_RATE = 2  # (defaulted - all recoveries) / original pool
MP_RECOVERY_RATE = 3  # recoveries / defaulted (NaN without defaults)
MP_PREPAY_RATE = 4
MP_SUPPORT_PAID = 5  # yuan
MP_PROVIDER_DEFAULT = 6  # 1.0 if any support provider defaulted within the deal's life
MP_ACCELERATED = 7  # 1.0 if the deal left normal status
MP_MIN_COVERAGE = 8
MP_COMPENSATION = 9  # yuan
MP_SUPPORT_DRAWN = 10  # 1.0 if a shortfall support paid anything
MP_CASH_RELEASED = 11  # yuan released from the trust at its end (SP_CASH_RELEASED)
N_MP = 12
# expected cash flows: cf[t, k]; per tranche j at j * N_CFT + item, then pool items
CFT_INTEREST = 0
CFT_PRINCIPAL = 1
CFT_WRITE_DOWN = 2
CFT_BALANCE_END = 3
CFT_RESIDUAL = 4
N_CFT = 5
CFP_INTEREST = 0
CFP_SCHED_PRIN = 1
CFP_PREPAY = 2
CFP_DEFAULT = 3
CFP_RECOVERY = 4
CFP_POOL_END = 5
CFP_SUPPORT = 6  # paid by guarantees and undertakings (as SP_SUPPORT_PAID)
CFP_ACCELERATED = 7
CFP_COVERAGE = 8  # the deal's headline coverage ratio (0 where undefined)
CFP_COVERAGE_DEFINED = 9  # 1 where the coverage ratio is defined (senior outstanding)
CFP_COMPENSATION = 10  # paid by loss compensation (as SP_COMPENSATION)
N_CFP = 11

# --- Monte Carlo sums of a block or a run: m[row, metric] and cf[row, t, k] -------------------
# w is a path's likelihood-ratio weight (1 under crude sampling), v a finite value
SUM_WV = 0  # Σw·v
SUM_W2V2 = 1  # Σw²·v²
SUM_W = 2  # Σw
SUM_N = 3  # the count of finite values
SUM_WV2 = 4  # Σw·v² (the crude variance, for the in-run variance-reduction estimate)
SUM_W2V = 5  # Σw²·v (the self-normalised estimator's standard error)
SUM_W2 = 6  # Σw²
N_SUM = 7
CF_WV = 0  # Σw·v of an expected-cash-flow item
CF_W2V2 = 1  # Σw²·v²
CF_W2V = 2  # Σw²·v
N_CF_SUM = 3

# Under importance sampling, the figures that are zero on every path where nothing goes wrong
# (losses, shortfalls, support, defaults) are estimated by the plain weighted mean Σw·v / P
# (unbiased, and exact however far the draws are shifted); the others, which every path
# contributes to (payments, balances, WAL, yields, coverage), by the self-normalised
# Σw·v / Σw, which does not carry the noise of the weights' own mean.
LOSS_LIKE_MT = (MT_PV_LOSS, MT_LOSS, MT_DEFAULT, MT_SUPPORT)
LOSS_LIKE_MP = (MP_DEFAULT_COUNT, MP_DEFAULT_RATE, MP_LOSS_RATE, MP_SUPPORT_PAID,
                MP_PROVIDER_DEFAULT, MP_ACCELERATED, MP_COMPENSATION, MP_SUPPORT_DRAWN)  # fmt: skip
LOSS_LIKE_CFT = (CFT_WRITE_DOWN,)
LOSS_LIKE_CFP = (CFP_DEFAULT, CFP_RECOVERY, CFP_SUPPORT, CFP_ACCELERATED, CFP_COMPENSATION)
