"""The labels of the deal report (``abs-engine report --lang en|zh``): headings, column names,
chart titles and sheet names in English and simplified Chinese.

One table, keyed by the engine's own names (``expected_loss``, ``coverage_ratio``, ...), so the
HTML report and the Excel workbook say the same thing in the same words. A key with no label
shows as itself: a column the engine adds later is never dropped, only left untranslated.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "LABELS", "label"]

#: the report's languages: English, simplified Chinese
LANGUAGES = ("en", "zh")

#: key → (English, Chinese)
LABELS: dict[str, tuple[str, str]] = {
    # headings
    "report_title": ("Deal report", "资产支持证券分析报告"),
    "deal_summary": ("Deal summary", "交易概况"),
    "capital_structure": ("Capital structure", "资本结构"),
    "tranche_metrics": ("Tranche metrics", "各档证券指标"),
    "comparison": ("Scenarios side by side", "情景对比"),
    "charts": ("Charts", "图表"),
    "cashflows": ("Expected cash flows by period", "分期预期现金流"),
    "agency_tables": ("Agency-style stress tables", "评级压力测试表"),
    "breakeven": ("Breakeven cumulative default rate", "临界累计违约率"),
    "large_obligor_test": ("Large-obligor test", "大额债务人违约测试"),
    "coverage_table": ("Coverage ratio by period", "分期本息覆盖倍数"),
    "assumptions": ("Assumptions and inputs", "假设与输入"),
    "deal_warnings": ("Deal warnings", "交易警告"),
    "inputs": ("Input files", "输入文件"),
    "scenario_parameters": ("Scenario parameters", "情景参数"),
    "monte_carlo": ("Monte Carlo", "蒙特卡洛模拟"),
    "deterministic": ("deterministic", "确定性情景"),
    "scenario": ("Scenario", "情景"),
    "stresses": ("Stresses", "压力测试"),
    "summary": ("Summary", "概况"),
    "tranches": ("Tranches", "各档证券"),
    "contents": ("Contents", "目录"),
    "cashflows_sheet": ("CF", "现金流"),
    "sheet_assumptions": ("Assumptions", "假设"),
    "sheet_comparison": ("Comparison", "情景对比"),
    "notes": ("Notes", "说明"),
    # deal summary items
    "deal": ("Deal", "交易名称"),
    "source": ("Deal file", "交易文件"),
    "currency": ("Currency", "币种"),
    "obligors": ("Obligors", "债务人数量"),
    "original_pool": ("Original pool balance", "初始资产池余额"),
    "periods": ("Payment periods", "支付期数"),
    "first_payment_date": ("First payment date", "首个兑付日"),
    "last_payment_date": ("Last payment date", "最后兑付日"),
    "issued": ("Tranches issued", "证券发行总额"),
    "overcollateralisation": ("Overcollateralisation", "超额抵押比例"),
    # stamp and assumptions
    "engine": ("Engine", "引擎版本"),
    "commit": ("Engine commit", "引擎代码版本"),
    "generated": ("Generated", "生成时间"),
    "role": ("Role", "文件类型"),
    "path": ("Path", "路径"),
    "sha256": ("SHA-256", "SHA-256 校验值"),
    "n_paths": ("Paths", "模拟路径数"),
    "seed": ("Seed", "随机种子"),
    "sampling": ("Sampling", "抽样方法"),
    "rating_table": ("Rating table", "评级对照表"),
    "illustrative_table": (
        "illustrative table shipped with the engine, not an agency's",
        "引擎附带的示意性对照表，并非评级机构数据",
    ),
    "kind": ("Kind", "类型"),
    "description": ("Description", "说明"),
    "role_deal": ("deal", "交易文件"),
    "role_tape": ("tape", "资产清单"),
    "role_scenario": ("scenario", "情景文件"),
    "role_rating_table": ("rating table", "评级对照表"),
    "parameter": ("Parameter", "参数"),
    "value": ("Value", "取值"),
    "recovery_rate": ("Recovery rate", "回收率"),
    "recovery_lag": ("Recovery lag (periods)", "回收滞后期数"),
    "timing": ("Default timing", "违约时间分布"),
    # tranche columns
    "tranche": ("Tranche", "证券档次"),
    "balance": ("Balance", "发行金额"),
    "share": ("Share of pool", "占资产池比例"),
    "coupon": ("Coupon", "票面利率"),
    "principal": ("Principal", "本金偿付方式"),
    "coupon_terms": ("Coupon terms", "票息条款"),
    "day_count": ("Day count", "计息基准"),
    "base_rate_applied": ("base_rate_applied", "适用基准利率"),
    "attachment": ("Attachment", "附着点"),
    "detachment": ("Detachment", "分离点"),
    "expected_loss": ("Expected loss", "预期损失"),
    "expected_loss_se": ("EL s.e.", "预期损失标准误"),
    "default_probability": ("P(shortfall)", "兑付不足概率"),
    "default_probability_se": ("P(shortfall) s.e.", "兑付不足概率标准误"),
    "wal_years": ("WAL (years)", "加权平均期限（年）"),
    "wal_years_se": ("WAL s.e.", "加权平均期限标准误"),
    "irr": ("IRR", "内部收益率"),
    "irr_se": ("IRR s.e.", "内部收益率标准误"),
    "min_coverage_ratio": ("Min. coverage ratio", "最低本息覆盖倍数"),
    "implied_rating": ("Implied rating", "隐含评级"),
    "lgd": ("LGD", "违约损失率"),
    "modified_duration": ("Modified duration", "修正久期"),
    "loss": ("Loss", "损失"),
    "principal_paid": ("Principal paid", "本金兑付"),
    "interest_paid": ("Interest paid", "利息兑付"),
    "interest_shortfall": ("Interest shortfall", "利息兑付不足额"),
    "residual_paid": ("Residual paid", "剩余收益分配"),
    "support_received": ("Support received", "获得差额支付金额"),
    # pool metrics
    "pool_metrics": ("Pool metrics", "资产池指标"),
    "default_count": ("Defaults (count)", "违约笔数"),
    "default_rate": ("Default rate", "违约率"),
    "loss_rate": ("Loss rate", "损失率"),
    "prepayment_rate": ("Prepayment rate", "早偿率"),
    "support_drawn_probability": ("Support drawn, probability", "差额支付启动概率"),
    "provider_default_probability": ("Provider default, probability", "差额支付承诺人违约概率"),
    "accelerated_probability": ("Acceleration, probability", "加速清偿概率"),
    "compensation_received": ("Loss compensation received", "损失补偿金额"),
    "cash_released": ("Cash released", "释放现金"),
    "original_balance": ("Original balance", "初始余额"),
    "defaulted": ("Defaulted", "违约本金"),
    "cumulative_default_rate": ("Cumulative default rate", "累计违约率"),
    "recovered": ("Recovered", "回收金额"),
    "recovery_after_legal_final": ("Recovered after legal final", "法定到期日后回收金额"),
    "realised_loss": ("Realised loss", "实现损失"),
    "prepaid": ("Prepaid", "早偿金额"),
    "worst_status": ("Worst status", "最差分配顺序状态"),
    "first_trigger_period": ("First trigger period", "首次触发期次"),
    "clean_up_call_period": ("Clean-up call period", "清仓回购期次"),
    "reserve_received": ("Paid from reserves", "储备金支付金额"),
    # cash flows
    "period": ("Period", "期次"),
    "payment_date": ("Payment date", "兑付日"),
    "balance_end": ("Balance (end)", "期末余额"),
    "write_down": ("Write-down", "本金减记"),
    "coverage_ratio": ("Coverage ratio", "本息覆盖倍数"),
    "coverage_ratio_p05": ("Coverage ratio, 5th pct.", "本息覆盖倍数5%分位数"),
    "collections": ("Collections", "资产池回收款"),
    "defaults": ("Defaults", "违约金额"),
    "recoveries": ("Recoveries", "违约回收金额"),
    "status": ("Status", "分配顺序状态"),
    "normal": ("normal", "正常"),
    "accelerated": ("accelerated", "加速清偿"),
    "post_default": ("after an event of default", "违约事件后"),
    "pool": ("Pool", "资产池"),
    "se": ("s.e.", "标准误"),
    # stress tables
    "support": ("With support", "含差额支付"),
    "breakeven_default_rate": ("Breakeven default rate", "临界违约率"),
    "base_case_default_rate": ("Base-case default rate", "基准违约率"),
    "multiple": ("Multiple of base case", "临界违约率/基准违约率"),
    "never_fails": ("Never fails", "始终足额兑付"),
    "defaulted_obligors": ("Largest obligors defaulted", "违约的最大债务人数"),
    "defaulted_balance": ("Defaulted balance", "违约本金"),
    "defaulted_share": ("Defaulted share of pool", "违约本金占资产池比例"),
    "paid_in_full_with_support": ("Paid in full, with support", "足额兑付（含差额支付）"),
    "loss_with_support": ("Loss, with support", "损失（含差额支付）"),
    "support_paid": ("Support paid", "差额支付金额"),
    "paid_in_full_without_support": ("Paid in full, without support", "足额兑付（不含差额支付）"),
    "loss_without_support": ("Loss, without support", "损失（不含差额支付）"),
    "timing_front_loaded": (
        "front-loaded over the first two thirds of the periods",
        "违约集中于前三分之二期间（前高后低）",
    ),
    "sequential": ("sequential", "顺序偿付"),
    "pro_rata": ("pro rata", "按比例偿付"),
    "target_balance": ("target balance", "目标余额偿付"),
    "residual": ("residual", "剩余收益（次级）"),
    "below": ("below", "低于"),
    "n/a": ("n/a", "不适用"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    # charts
    "chart_loss_distribution": ("Pool loss distribution", "资产池损失分布"),
    "chart_balance": ("Tranche balance over time", "各档证券余额变化"),
    "chart_coverage": ("Coverage ratio by period", "分期本息覆盖倍数"),
    "chart_waterfall": ("Cash-flow waterfall by period", "分期现金流分配"),
    "loss_rate_axis": ("Pool loss (share of original balance)", "资产池损失（占初始余额）"),
    "probability_axis": ("Share of paths", "路径占比"),
    "amount_axis": ("Yuan", "金额（元）"),
    "ratio_axis": ("Ratio", "倍数"),
    "mean": ("mean", "均值"),
    "band": ("5–95% band", "5%–95%区间"),
    "attachment_of": ("attachment of", "附着点："),
    "collections_line": ("pool collections", "资产池回收款"),
    "band_note": (
        "Bands: 5th to 95th percentile over the first {k:,} paths' full ledgers (the run's "
        "own random numbers); means over all {n:,} paths.",
        "区间：前 {k:,} 条路径完整台账的5%至95%分位（与本次模拟相同的随机数）；均值基于全部 "
        "{n:,} 条路径。",
    ),
    "no_band_note": (
        "No band: the pool is too large to re-run enough paths' full ledgers for one.",
        "资产池规模过大，无法重算足够路径的完整台账，未画区间。",
    ),
    "importance_band_note": (
        "No band: an importance-sampled run's paths are weighted, and a few thousand of them "
        "give no 5–95% band; means over all paths, with their likelihood-ratio weights.",
        "重要性抽样的路径带有似然比权重，少量路径无法给出5%–95%区间，未画区间；均值为全部路径的加权平均。",
    ),
    "one_path_band_note": (
        "No band: a 5–95% band needs at least two paths; this run has one.",
        "本次模拟仅一条路径，无法计算5%–95%区间，未画区间。",
    ),
    "attachment_note": (
        "Tranches in the deal file's order, which the deal schema takes as their seniority "
        "(most senior first; write-offs hit the last first). Consecutive tranches of one "
        "pari-passu label are one class: written down together by balance, with the class's "
        "attachment and detachment points. Attachment and detachment points as shares of the "
        "original pool, "
        "from the tranche balances alone (excess spread, reserves and support absorb losses "
        "first and move them up).",
        "各档证券按交易文件中的顺序列示，即其偿付优先顺序（最优先者在前，本金减记自最后一档开始）。"
        "标注为同一同顺位（pari passu）类别的相邻档次视为同一层级：按余额比例共同减记，"
        "附着点与分离点为该层级的附着点与分离点。"
        "附着点与分离点按各档余额占初始资产池比例计算（超额利差、储备金和差额支付会先吸收损失，"
        "实际损失起点更高）。",
    ),
    "se_note": (
        "Every Monte Carlo figure is a mean over paths; s.e. is its standard error.",
        "蒙特卡洛结果均为路径平均值，标准误为其估计误差。",
    ),
    "det_loss_note": (
        "Deterministic scenarios: the scenario's own loss (share of balance, undiscounted) and "
        "a shortfall probability of 1 or 0; no standard errors or implied ratings.",
        "确定性情景：损失为该情景下实际损失（占余额比例，未折现），兑付不足概率为1或0，"
        "无标准误和隐含评级。",
    ),
}


def label(key: str, lang: str) -> str:
    """``key``'s label in ``lang`` ("en" or "zh"); the key itself when it has none."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "zh" else pair[0]
