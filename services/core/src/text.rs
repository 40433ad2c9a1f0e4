//! How dates and times read in every text a person reads (reminders, digests, summaries,
//! notices, exports): 2020年4月30日, a deadline at the end of a day as 2020年4月30日24时, a time of
//! day as 2020年4月9日08:30, all in campaign time, without Western spaces. The one place these
//! formats live; English logs and error messages keep ISO dates.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

/// 2020年4月30日
pub fn date_zh(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// An instant in campaign time: the end of a day (the next midnight) as 2020年4月30日24时,
/// any other instant as 2020年4月9日08:30.
pub fn deadline_zh(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    if local.time() == NaiveTime::MIN {
        let last = local.date_naive().pred_opt().expect("date in range");
        format!("{}24时", date_zh(last))
    } else {
        format!(
            "{}{:02}:{:02}",
            date_zh(local.date_naive()),
            local.hour(),
            local.minute()
        )
    }
}

/// A period of days: 2020年4月30日至2020年5月9日.
pub fn period_zh(first: NaiveDate, last: NaiveDate) -> String {
    format!("{}至{}", date_zh(first), date_zh(last))
}

/// What a 公示 carries (`text/notice.rs`).
pub mod notice;

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Tz {
        "Asia/Shanghai".parse().unwrap()
    }

    #[test]
    fn dates_and_times_read_as_a_bureau_writes_them() {
        let d = NaiveDate::from_ymd_opt(2020, 4, 30).unwrap();
        assert_eq!(date_zh(d), "2020年4月30日");
        let midnight = DateTime::parse_from_rfc3339("2020-05-01T00:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(deadline_zh(midnight, tz()), "2020年4月30日24时");
        let morning = DateTime::parse_from_rfc3339("2020-04-09T08:30:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(deadline_zh(morning, tz()), "2020年4月9日08:30");
        assert_eq!(
            period_zh(d, NaiveDate::from_ymd_opt(2020, 5, 9).unwrap()),
            "2020年4月30日至2020年5月9日"
        );
    }

    #[test]
    fn a_notice_reads_as_a_bureau_publishes_it() {
        let def = crate::CampaignDefinition::parse(include_str!(
            "../../../deploy/campaigns/changle-2020.toml"
        ))
        .unwrap();
        assert_eq!(
            notice::heading("昌乐县2020年标杆种子校拟定名单公示"),
            "关于昌乐县2020年标杆种子校拟定名单的公示"
        );
        assert_eq!(
            notice::basis(&def, crate::notice::NoticeKind::SeedCandidates),
            "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。"
        );
        let d = |m, day| NaiveDate::from_ymd_opt(2020, m, day).unwrap();
        assert_eq!(
            notice::period(&def, d(3, 2), d(3, 6)),
            "公示期：2020年3月2日至2020年3月6日（共5个工作日）"
        );
        assert_eq!(
            notice::objection(&def, d(3, 6)),
            "公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：2020年3月6日。匿名异议不予受理。"
        );
        assert_eq!(
            notice::contacts(&def),
            [
                "监督电话：0536-6212345",
                "通信地址：山东省潍坊市昌乐县教育和体育局督导室",
                "电子邮箱：dudaoshi@changle.example.cn"
            ]
        );
        assert_eq!(
            notice::footer(&def, d(3, 2), d(3, 6)),
            [
                "公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：2020年3月6日。匿名异议不予受理。",
                "监督电话：0536-6212345",
                "通信地址：山东省潍坊市昌乐县教育和体育局督导室",
                "电子邮箱：dudaoshi@changle.example.cn",
                "昌乐县教育和体育局",
                "2020年3月2日",
            ]
        );
        let mut none = def.clone();
        none.publication.phone.clear();
        none.publication.address.clear();
        none.publication.email.clear();
        assert_eq!(
            notice::contacts(&none),
            ["请与昌乐县人民政府教育督导室联系。"]
        );
    }
}
