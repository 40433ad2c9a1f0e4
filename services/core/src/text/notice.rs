//! What a 公示 carries, worded once for the pages (`web::public`) and the exports
//! (`junheng_sheets`): the 关于…的公示 heading, the basis with the document number and the
//! period, from the definition's `[publication]`.

use chrono::NaiveDate;

use super::date_zh;
use crate::CampaignDefinition;
use crate::notice_kind::NoticeKind;

/// 关于昌乐县2020年标杆种子校拟定名单的公示, from a stored title ("…名单公示").
pub fn heading(title: &str) -> String {
    let stem = title.strip_suffix("公示").unwrap_or(title);
    let stem = stem.strip_suffix('的').unwrap_or(stem);
    format!("关于{stem}的公示")
}

/// What the notice lists, as the basis names it.
pub fn subject(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::SeedCandidates => "标杆种子校拟定名单",
        NoticeKind::SeedSupplementary => "标杆种子校补充名单",
        NoticeKind::Results => "潜力校验收成绩（含帮扶的导师学校）",
    }
}

/// 根据《昌乐县2020年…实施方案》（乐教督字〔2020〕2号）要求，经学校申报、…审核，现将…予以公示。
pub fn basis(def: &CampaignDefinition, kind: NoticeKind) -> String {
    let p = &def.publication;
    format!(
        "根据《{county}{year}年{title}实施方案》（{number}）要求，经学校申报、{office}审核，现将{county}{year}年{what}予以公示。",
        county = def.county,
        year = def.year,
        title = p.title,
        number = p.document_number,
        office = p.office,
        what = subject(kind),
    )
}

/// How to object, as the page says it: 实名, in writing, by the last day; 匿名异议不予受理.
pub fn objection(def: &CampaignDefinition, last_day: NaiveDate) -> String {
    format!(
        "公示期内，如对公示内容有异议，请以书面形式实名向{}反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：{}。匿名异议不予受理。",
        def.publication.office,
        date_zh(last_day)
    )
}

/// 监督电话 / 通信地址 / 电子邮箱, those the definition gives; none given: 请与…联系。
pub fn contacts(def: &CampaignDefinition) -> Vec<String> {
    let p = &def.publication;
    let lines: Vec<String> = [
        ("监督电话", &p.phone),
        ("通信地址", &p.address),
        ("电子邮箱", &p.email),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}：{v}"))
    .collect();
    if lines.is_empty() {
        vec![format!("请与{}联系。", p.office)]
    } else {
        lines
    }
}

/// What follows the list, as on the public page: how to object, the contacts, and the
/// 落款 — the issuing unit and the date of publication.
pub fn footer(def: &CampaignDefinition, published: NaiveDate, last_day: NaiveDate) -> Vec<String> {
    let mut lines = vec![objection(def, last_day)];
    lines.extend(contacts(def));
    lines.push(def.publication.issuing_unit.clone());
    lines.push(date_zh(published));
    lines
}

/// 公示期：2020年3月2日至2020年3月6日（共5个工作日）
pub fn period(def: &CampaignDefinition, published: NaiveDate, last_day: NaiveDate) -> String {
    format!(
        "公示期：{}至{}（共{}个工作日）",
        date_zh(published),
        date_zh(last_day),
        def.notice_working_days
    )
}
