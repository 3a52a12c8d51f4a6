package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
)

// lang is a page language: one set of templates, one message catalogue per lang.
type lang string

const (
	langZH lang = "zh-CN"
	langEN lang = "en"
)

// langCookie remembers a language chosen with ?lang=.
const langCookie = "lang"

// parseLang reads a language as ?lang=, the cookie or Accept-Language name it.
func parseLang(v string) (lang, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case v == "zh" || strings.HasPrefix(v, "zh-") || strings.HasPrefix(v, "zh_"):
		return langZH, true
	case v == "en" || strings.HasPrefix(v, "en-") || strings.HasPrefix(v, "en_"):
		return langEN, true
	}
	return "", false
}

// short is the value of ?lang= and of the cookie.
func (l lang) short() string {
	if l == langEN {
		return "en"
	}
	return "zh"
}

func (l lang) other() lang {
	if l == langEN {
		return langZH
	}
	return langEN
}

// negotiate picks the page language: ?lang= (then remembered in a cookie), the
// cookie, Accept-Language, and zh-CN when none of them names zh or en.
func (s *server) negotiate(c echo.Context) lang {
	if l, ok := parseLang(c.QueryParam("lang")); ok {
		c.SetCookie(&http.Cookie{Name: langCookie, Value: l.short(), Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteLaxMode})
		return l
	}
	if ck, err := c.Cookie(langCookie); err == nil {
		if l, ok := parseLang(ck.Value); ok {
			return l
		}
	}
	return fromAcceptLanguage(c.Request().Header.Get("Accept-Language"))
}

// fromAcceptLanguage returns the supported language with the highest q, the first
// one listed on a tie, or zh-CN.
func fromAcceptLanguage(h string) lang {
	best, bestQ := langZH, -1.0
	for part := range strings.SplitSeq(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		l, ok := parseLang(tag)
		if ok && q > 0 && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

// tr formats for one language in the configured zone. Pages get it embedded in
// their view, so templates call {{.T "key"}} and {{$.Date .OpensAt}}.
type tr struct {
	Lang lang
	zone *time.Location
	now  time.Time
}

// T returns the message for key, formatted with args (fmt verbs). A missing key
// shows as ⟦key⟧, which the tests look for on every page.
func (t tr) T(key string, args ...any) string {
	m, ok := messages[t.Lang][key]
	if !ok {
		return "⟦" + key + "⟧"
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// Date is a time as people read it, in the configured zone.
func (t tr) Date(v time.Time) string {
	v = v.In(t.zone)
	if t.Lang == langEN {
		return v.Format("2 Jan 2006, 15:04")
	}
	return v.Format("2006年1月2日 15:04")
}

// ISO is the machine-readable time for <time datetime>.
func (t tr) ISO(v time.Time) string { return v.In(t.zone).Format(time.RFC3339) }

// Zone names the zone times are shown in: 北京时间 for China's zone, else its
// name and offset.
func (t tr) Zone() string {
	switch t.zone.String() {
	case "Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "PRC":
		if _, off := t.now.In(t.zone).Zone(); off == 8*3600 {
			return t.T("tz.beijing")
		}
	}
	_, off := t.now.In(t.zone).Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("%s (UTC%s%02d:%02d)", t.zone.String(), sign, off/3600, off%3600/60)
}

// Window is a comment period with its zone.
func (t tr) Window(d drafts.Draft) string {
	return t.T("window.range", t.Date(d.OpensAt), t.Date(d.ClosesAt), t.Zone())
}

// Left is the time until a window closes: "还剩 3 天 4 小时".
func (t tr) Left(closes time.Time) string { return t.T("time.left", t.span(closes.Sub(t.now))) }

// OpensIn is the time until a window opens: "3 天 4 小时后开始".
func (t tr) OpensIn(opens time.Time) string { return t.T("time.opens_in", t.span(opens.Sub(t.now))) }

// span writes a duration in its two largest units, rounded down: a deadline
// shown as later than it is would mislead.
func (t tr) span(d time.Duration) string {
	if d < time.Minute {
		return t.T("dur.lt_minute")
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	unit := func(n int, key string) {
		if n != 1 {
			key += "s"
		}
		parts = append(parts, t.T(key, n))
	}
	switch {
	case days > 0:
		unit(days, "dur.day")
		if hours > 0 {
			unit(hours, "dur.hour")
		}
	case hours > 0:
		unit(hours, "dur.hour")
		if mins > 0 {
			unit(mins, "dur.minute")
		}
	default:
		unit(mins, "dur.minute")
	}
	return strings.Join(parts, " ")
}

// Kind, Category, DraftStatus and ReceiptStatus localize the domain's enums.
func (t tr) Kind(k drafts.Kind) string              { return t.T("kind." + string(k)) }
func (t tr) Category(c comments.Category) string    { return t.T("category." + string(c)) }
func (t tr) DraftStatus(s drafts.Status) string     { return t.T("status." + string(s)) }
func (t tr) ReceiptStatus(s comments.Status) string { return t.T("receipt.status." + string(s)) }
func (t tr) Role(r accounts.Role) string            { return t.T("role." + string(r)) }
func (t tr) Scope(s accounts.Scope) string          { return t.T("scope." + string(s)) }

func (t tr) ReceiptStatusNote(s comments.Status) string {
	return t.T("receipt.status_note." + string(s))
}

// messages is the catalogue: every string a person reads on a page. Both languages
// hold the same keys (TestCatalogueComplete).
var messages = map[lang]map[string]string{
	langZH: {
		"site.name":   "政策文件草案公开征求意见",
		"nav.label":   "主导航",
		"nav.skip":    "跳到正文",
		"nav.list":    "征求意见",
		"nav.lookup":  "回执查询",
		"nav.switch":  "English",
		"footer.time": "本站时间均为%s。意见的接收时间以本系统收到意见的时间为准。",
		"footer.data": "本站不公开提交者的姓名和联系方式。",

		"list.title":         "公开征求意见",
		"list.intro":         "以下政策文件草案正在或即将公开征求意见。您可以逐条阅读草案，对某一条款或草案全文提出意见；提交后会得到回执编号，凭编号可随时查询处理状态。",
		"list.open":          "正在征求意见",
		"list.upcoming":      "即将开始",
		"list.closed":        "已结束",
		"list.none.open":     "目前没有正在征求意见的草案。",
		"list.none.upcoming": "暂无即将开始的征求意见。",
		"list.none.closed":   "暂无已结束的征求意见。",

		"field.bureau": "起草单位",
		"field.kind":   "文件类型",
		"field.window": "征求意见期",
		"field.left":   "剩余时间",
		"field.opens":  "开始时间",
		"field.count":  "已收到意见",
		"count":        "%d 条",

		"window.range":        "%s 至 %s（%s）",
		"time.with_zone":      "%s（%s）",
		"time.left":           "还剩 %s",
		"time.opens_in":       "%s后开始",
		"time.closed":         "已结束",
		"dur.lt_minute":       "不到 1 分钟",
		"dur.day":             "%d 天",
		"dur.days":            "%d 天",
		"dur.hour":            "%d 小时",
		"dur.hours":           "%d 小时",
		"dur.minute":          "%d 分钟",
		"dur.minutes":         "%d 分钟",
		"tz.beijing":          "北京时间",
		"status.open":         "征求意见中",
		"status.upcoming":     "尚未开始",
		"status.closed":       "已结束",
		"kind.normative":      "行政规范性文件",
		"kind.major_decision": "重大行政决策",
		"kind.rule":           "规章",
		"kind.other":          "其他",

		"draft.summary":         "起草说明",
		"draft.text":            "草案全文",
		"draft.preamble":        "前言",
		"draft.comment_section": "对本条提出意见",
		"draft.comment_on":      "：%s",
		"draft.comment_whole":   "对草案全文提出意见",
		"draft.how":             "您可以对下方任一条款提出意见，也可以对草案全文提出意见。截止时间：%s（%s）。",
		"draft.closed_notice":   "本次征求意见已于 %s（%s）结束，不再接收意见。感谢您的关注。",
		"draft.upcoming_notice": "本次征求意见将于 %s（%s）开始，届时即可提出意见。",
		"draft.shortened":       "征求意见期限较短的说明",

		"form.title":           "提出意见",
		"form.draft":           "草案",
		"form.target":          "意见针对",
		"form.on_section":      "您正在对以下内容提出意见：",
		"form.whole":           "草案全文",
		"form.change":          "返回草案，选择其他条款",
		"form.body":            "意见内容",
		"form.body_hint":       "最多 %d 字。",
		"form.counter":         "已输入 %d / %d 字",
		"form.counter_js":      "已输入 {n} / %d 字",
		"form.counter_over":    "已超出 {n} 字，请删减后提交。",
		"form.name":            "姓名或单位名称（选填）",
		"form.name_hint":       "最多 %d 字。",
		"form.contact":         "联系方式（选填）",
		"form.contact_hint":    "电话或电子邮箱，仅供起草单位必要时与您联系，不会公开。最多 %d 字。",
		"form.category":        "身份类别",
		"form.publish":         "我同意在公布意见时公开我的姓名",
		"form.publish_hint":    "此项单独征求您的同意，可以不勾选。不勾选时，公布的意见不显示您的身份。",
		"form.privacy":         "个人信息处理说明",
		"form.privacy.who":     "处理者：本草案的起草单位%s。",
		"form.privacy.why":     "目的：研究本草案收到的意见，必要时就您的意见与您联系。",
		"form.privacy.what":    "内容：您的意见，以及您自愿填写的姓名和联系方式。请勿填写身份证号码、健康状况等敏感信息。",
		"form.privacy.keep":    "期限：联系方式保存至本次征求意见的采纳情况反馈公布为止，之后删除；意见内容作为征求意见记录依法归档。",
		"form.privacy.time":    "接收时间：回执上的接收时间是本系统收到您意见的时间。",
		"form.privacy.ask":     "如对个人信息处理有疑问，可以向%s咨询。",
		"form.submit":          "提交意见",
		"form.required":        "（必填）",
		"form.error_item":      "%s：%s",
		"form.summary":         "意见未能提交，请修改以下问题：",
		"form.closed":          "本次征求意见已经结束，您的意见未能提交。下面保留了您填写的内容，您可以复制留存。",
		"form.not_open":        "本次征求意见将于 %s（%s）开始，您的意见暂未提交。届时可以再次提交。",
		"form.reused":          "这份表单已经以不同的内容提交过一次。如要作为一条新意见提交，请再次点击“提交意见”。",
		"form.unavailable":     "系统暂时无法保存意见，您的意见尚未提交。您填写的内容保留在下方，请稍后再次点击“提交意见”。",
		"form.closed_page":     "本次征求意见已于 %s（%s）结束，不再接收意见。",
		"form.upcoming_page":   "本次征求意见将于 %s（%s）开始，届时即可提出意见。",
		"form.error_prefix":    "错误：",
		"form.rate_limited":    "短时间内从您所在的网络提交的意见较多，系统暂时不能接收，您的意见尚未提交。您填写的内容保留在下方，请在 %s后再次点击“提交意见”。",
		"form.proof_missing":   "本次征求意见需要在提交前由浏览器自动完成一次安全验证，但验证没有完成（浏览器可能未启用 JavaScript），您的意见尚未提交。您填写的内容保留在下方：请启用 JavaScript 后再次点击“提交意见”，或通过%s公布的信函、电子邮件等其他方式提出意见。",
		"form.proof_stale":     "提交前的安全验证已经失效（页面打开时间过长，或已使用过），您的意见尚未提交。您填写的内容保留在下方，请再次点击“提交意见”。",
		"form.body_incomplete": "您的意见没有完整传送到本系统（网络连接可能中断了），尚未提交。已收到的内容保留在下方，请核对、补全后再次点击“提交意见”。",
		"form.body_timeout":    "您的意见传送时间过长（网络可能较慢），尚未提交。已收到的内容保留在下方，请核对、补全后再次点击“提交意见”。",
		"form.pow_note":        "为防止批量自动提交，本页会在您的浏览器中自动完成一次安全验证，通常只需几秒钟，无需您进行任何操作。",
		"form.pow_noscript":    "本次征求意见目前需要启用浏览器的 JavaScript 才能在线提交。如无法启用，您可以通过%s公布的信函、电子邮件等其他方式提出意见。",
		"form.pow_working":     "正在进行安全验证……",
		"form.pow_done":        "安全验证已完成，可以提交。",
		"form.pow_wait":        "正在完成安全验证，完成后将自动提交，请稍候……",
		"form.pow_failed":      "您的浏览器无法完成安全验证。请更换浏览器后重试，或通过%s公布的其他方式提出意见。",
		"form.draft_full":      "本草案在线收到的意见已达到系统的容量上限，您的意见未能提交。下面保留了您填写的内容，您可以复制留存，并通过%s公布的信函、电子邮件等其他方式提出意见。",
		"form.hp":              "请勿填写此项",

		"err.body.required": "请填写意见内容。",
		"err.body.too_long": "最多 %d 字，当前 %d 字，请删减 %d 字。",
		"err.too_long":      "最多 %d 字，当前 %d 字。",
		"err.utf8":          "含有无法识别的字符，请重新输入。",
		"err.section":       "所选条款不在本草案中。请返回草案重新选择，或对草案全文提出意见。",
		"err.category":      "请从列表中选择身份类别。",
		"err.idempotency":   "表单已失效，请刷新页面后重新提交（表单标识最多 %d 个可打印 ASCII 字符）。",
		"err.required":      "此项为必填项。",
		"err.negative":      "不能为负数。",

		"err.draft.id":                  "2 至 64 个字符，只能使用小写字母、数字和连字符，并以字母或数字开头。",
		"err.draft.kind":                "应为 normative、major_decision、rule 或 other。",
		"err.draft.closes_required":     "必填，格式为 RFC 3339，例如 2026-12-01T18:00:00+08:00。",
		"err.draft.closes_before_opens": "应晚于开始时间（opens_at）。",
		"err.draft.closes_past":         "应晚于开始时间（未填 opens_at 时为当前时间）。",
		"err.draft.opens_import":        "导入征求意见时必须填写。",
		"err.draft.opens_past":          "早于当前时间超过 %d 分钟：如要立即发布，请不填此项。",
		"err.draft.recipients_none":     "至少填写一个电子邮箱地址。",
		"err.draft.recipients_many":     "最多 %d 个地址。",
		"err.draft.recipient":           "%q 不是单纯的电子邮箱地址。",
		"err.limits.pow_bits":           "从 0（关闭）到 %d。",
		"err.json.unknown":              "未知字段。",
		"err.json.time":                 "时间格式为 RFC 3339，例如 2026-12-01T18:00:00+08:00。",
		"err.json.type":                 "应为 %s 类型。",

		"category.individual":   "个人",
		"category.enterprise":   "企业",
		"category.organization": "社会组织",
		"category.expert":       "专家学者",
		"category.public_body":  "国家机关或事业单位",
		"category.other":        "其他",

		"receipt.title":                "意见回执",
		"receipt.new":                  "您的意见已提交成功。",
		"receipt.code":                 "回执编号",
		"receipt.keep":                 "请保存回执编号（可截图或抄写），凭此编号可随时查询意见的处理状态。",
		"receipt.draft":                "草案",
		"receipt.section":              "意见针对",
		"receipt.received":             "接收时间",
		"receipt.received_note":        "以本系统收到意见的时间为准。",
		"receipt.status":               "处理状态",
		"receipt.sha":                  "内容摘要（SHA-256）",
		"receipt.sha_hint":             "可用于核对意见内容自接收以来未被改动。",
		"receipt.another":              "查询其他回执",
		"receipt.status.queued":        "已接收，正在登记",
		"receipt.status.accepted":      "已登记",
		"receipt.status.rejected":      "未能登记",
		"receipt.status_note.queued":   "您的意见已经收到，正在存入本次征求意见的记录，请稍后刷新查看。",
		"receipt.status_note.accepted": "您的意见已存入本次征求意见的记录，将由起草单位研究处理。",
		"receipt.status_note.rejected": "您的意见未能存入记录。请重新提交，或联系起草单位。",

		"lookup.title":        "回执查询",
		"lookup.intro":        "输入提交意见后得到的回执编号，查询意见的处理状态。",
		"lookup.code":         "回执编号",
		"lookup.code_hint":    "例如 12-ABCDE-FGHJK，不区分大小写。",
		"lookup.submit":       "查询",
		"lookup.result":       "查询结果",
		"lookup.not_found":    "没有找到回执编号“%s”。请核对后重新输入。",
		"lookup.view":         "查看回执详情",
		"lookup.rate_limited": "短时间内从您所在的网络查询回执的次数较多，请在 %s后再试。",
		"lookup.unavailable":  "系统暂时无法查询回执，请稍后再试。您的意见不受影响。",

		"thanks.title": "感谢您的参与",
		"thanks.p":     "感谢您对本次征求意见的关注和参与。",
		"thanks.back":  "返回草案",

		"nav.account":              "我的账户（%s）",
		"nav.logout":               "退出登录",
		"login.title":              "工作人员登录",
		"login.intro":              "本页面仅供起草单位工作人员、审核人员和系统管理员使用。",
		"login.name":               "用户名",
		"login.password":           "密码",
		"login.submit":             "登录",
		"login.citizens":           "公众提出意见、查询回执无需登录。",
		"login.bad":                "用户名或密码不正确。",
		"login.locked":             "登录失败次数过多，该账户已暂时锁定，请在 %s后再试。",
		"login.locked_address":     "从您所在的网络登录失败的次数过多，请在 %s后再试。",
		"login.disabled":           "该账户已停用。如有疑问，请联系系统管理员。",
		"login.required":           "请先登录。",
		"login.logged_out":         "您已退出登录。",
		"account.title":            "我的账户",
		"account.name":             "用户名",
		"account.role":             "角色",
		"account.bureaus":          "所属单位",
		"role.admin":               "系统管理员",
		"role.bureau":              "起草单位工作人员",
		"role.reviewer":            "审核人员",
		"scope.read":               "只读：读取意见",
		"scope.write":              "读写：本账户可做的一切",
		"account.tokens":           "API 令牌",
		"account.tokens_intro":     "程序调用本系统的接口时使用令牌，而不是您的密码。令牌只在生成时显示一次；不再使用时请撤销。",
		"account.token_scope":      "权限",
		"account.token_created":    "生成时间",
		"account.token_used":       "最近使用",
		"account.token_never":      "从未使用",
		"account.token_revoke":     "撤销",
		"account.token_none":       "您还没有令牌。",
		"account.token_make":       "生成新令牌",
		"account.token_label":      "用途",
		"account.token_label_hint": "例如“意见导出脚本”，便于日后识别。",
		"account.token_submit":     "生成令牌",
		"account.token_new":        "新令牌：%s",
		"account.token_once":       "请立即复制并妥善保存：离开本页后将无法再次查看。如果遗失，请撤销后重新生成。",
		"account.token_revoked":    "令牌已撤销。",
		"account.password":         "修改密码",
		"account.password_intro":   "修改密码后，您在其他设备上的登录将全部退出。",
		"account.current":          "当前密码",
		"account.new":              "新密码",
		"account.new_hint":         "至少 %d 个字符。可以使用一句容易记住的话。",
		"account.confirm":          "再次输入新密码",
		"account.password_submit":  "修改密码",
		"account.password_done":    "密码已修改，您在其他设备上的登录已全部退出。",
		"err.user.name":            "用户名为 2 至 64 个字符，只能使用小写字母、数字和 . _ -，并以字母或数字开头。",
		"err.user.bureau_required": "起草单位工作人员至少要属于一个单位。",
		"err.user.bureau_role":     "只有起草单位工作人员可以属于单位。",
		"err.user.role":            "角色应为 admin、bureau 或 reviewer。",
		"err.user.no_bureau":       "所属单位不存在。",
		"err.password.long":        "密码最多 %d 字节。",
		"err.password.short":       "密码至少 %d 个字符，当前 %d 个。",
		"err.password.name":        "密码不能与用户名相同。",
		"err.password.current":     "当前密码不正确。",
		"err.password.confirm":     "两次输入的新密码不一致。",
		"err.token.scope":          "请从列表中选择权限。",
		"err.token.label":          "请填写令牌的用途。",
		"err.bureau.required":      "请填写单位名称。",
		"error.forbidden":          "无权进行此操作",
		"error.forbidden.p":        "您的账户没有进行此操作的权限。如有需要，请联系系统管理员。",

		"error.title":               "出错了",
		"error.home":                "返回征求意见列表",
		"error.back_form":           "返回意见表",
		"error.ref":                 "错误编号：%s",
		"error.draft_not_found":     "未找到该草案",
		"error.draft_not_found.p":   "该草案不存在，或链接有误。请从征求意见列表中选择草案。",
		"error.receipt_not_found":   "未找到该回执",
		"error.receipt_not_found.p": "没有这个回执编号。请核对编号，或在回执查询页重新输入。",
		"error.not_found":           "页面不存在",
		"error.not_found.p":         "您访问的页面不存在，或链接有误。",
		"error.csrf":                "表单已过期",
		"error.csrf.p":              "为保护您的提交，表单在一段时间后会失效，您的意见尚未提交。请返回意见表，刷新页面后重新提交；如内容较长，请先复制保存。",
		"error.too_large":           "提交的内容过大",
		"error.too_large.p":         "提交的内容超过了系统可以接收的大小，您的意见尚未提交。意见内容最多 %d 字，请删减后重新提交。",
		"error.unavailable":         "系统暂时繁忙",
		"error.unavailable.p":       "系统暂时无法处理您的请求，请稍后再试。如果您正在提交意见，意见尚未提交。",
		"error.internal":            "系统出现错误",
		"error.internal.p":          "系统出现错误，请稍后再试。如果问题持续出现，请联系我们并告知下方的错误编号。",
		"error.bad_request":         "无法处理该请求",
		"error.bad_request.p":       "请求的格式有误。请返回上一页重试。",
		"error.conflict":            "无法完成该操作",
		"error.conflict.p":          "当前状态下无法完成该操作，例如征求意见已经结束。",
		"error.incomplete":          "请求没有完整传送",
		"error.incomplete.p":        "您发送的内容没有完整传送到本系统（网络连接可能中断或过慢），尚未处理。请返回上一页重试。",
		"error.rate_limited":        "请求过于频繁",
		"error.rate_limited.p":      "短时间内从您所在的网络发出的请求较多，请稍后再试。",
	},
	langEN: {
		"site.name":   "Public Consultation on Draft Policies",
		"nav.label":   "Main",
		"nav.skip":    "Skip to main content",
		"nav.list":    "Consultations",
		"nav.lookup":  "Look up a receipt",
		"nav.switch":  "中文",
		"footer.time": "All times on this site are %s. A comment's time of receipt is when this system received it.",
		"footer.data": "This site never shows commenters' names or contact details.",

		"list.title":         "Public consultations",
		"list.intro":         "Draft policies open, or soon to open, for public comment. Read a draft section by section and comment on a clause or on the whole text. You get a receipt code with which you can check on your comment at any time.",
		"list.open":          "Open for comment",
		"list.upcoming":      "Opening soon",
		"list.closed":        "Closed",
		"list.none.open":     "No draft is open for comment right now.",
		"list.none.upcoming": "No consultation is scheduled.",
		"list.none.closed":   "No consultation has closed yet.",

		"field.bureau": "Drafting body",
		"field.kind":   "Kind of document",
		"field.window": "Comment period",
		"field.left":   "Time left",
		"field.opens":  "Opens",
		"field.count":  "Comments received",
		"count":        "%d",

		"window.range":        "%s to %s (%s)",
		"time.with_zone":      "%s (%s)",
		"time.left":           "%s left",
		"time.opens_in":       "Opens in %s",
		"time.closed":         "Closed",
		"dur.lt_minute":       "less than a minute",
		"dur.day":             "%d day",
		"dur.days":            "%d days",
		"dur.hour":            "%d hour",
		"dur.hours":           "%d hours",
		"dur.minute":          "%d minute",
		"dur.minutes":         "%d minutes",
		"tz.beijing":          "China Standard Time",
		"status.open":         "Open for comment",
		"status.upcoming":     "Not open yet",
		"status.closed":       "Closed",
		"kind.normative":      "Administrative normative document",
		"kind.major_decision": "Major administrative decision",
		"kind.rule":           "Government rule",
		"kind.other":          "Other",

		"draft.summary":         "Explanatory notes",
		"draft.text":            "Text of the draft",
		"draft.preamble":        "Preamble",
		"draft.comment_section": "Comment on this section",
		"draft.comment_on":      ": %s",
		"draft.comment_whole":   "Comment on the whole draft",
		"draft.how":             "You can comment on any section below, or on the whole draft. Comments close on %s (%s).",
		"draft.closed_notice":   "This consultation closed on %s (%s). Comments are no longer accepted. Thank you for your interest.",
		"draft.upcoming_notice": "This consultation opens on %s (%s). You can comment from then.",
		"draft.shortened":       "Why the comment period is shorter",

		"form.title":           "Submit a comment",
		"form.draft":           "Draft",
		"form.target":          "Comment on",
		"form.on_section":      "You are commenting on:",
		"form.whole":           "The whole draft",
		"form.change":          "Back to the draft to choose another section",
		"form.body":            "Your comment",
		"form.body_hint":       "At most %d characters.",
		"form.counter":         "%d of %d characters",
		"form.counter_js":      "{n} of %d characters",
		"form.counter_over":    "{n} characters over the limit; please shorten it.",
		"form.name":            "Name or organization (optional)",
		"form.name_hint":       "At most %d characters.",
		"form.contact":         "Contact (optional)",
		"form.contact_hint":    "Phone or e-mail, only for the drafting body to reach you if needed; never published. At most %d characters.",
		"form.category":        "You are commenting as",
		"form.publish":         "I agree that my name may be published with my comment",
		"form.publish_hint":    "This asks for your separate consent and may be left unticked. If unticked, published comments show no identity.",
		"form.privacy":         "How your personal information is used",
		"form.privacy.who":     "Who: the body that drafted this text, %s.",
		"form.privacy.why":     "Why: to consider the comments on this draft and, if needed, to contact you about yours.",
		"form.privacy.what":    "What: your comment and, if you give them, your name and contact details. Please do not include ID numbers, health details or other sensitive information.",
		"form.privacy.keep":    "How long: contact details are kept until the feedback on this consultation is published, then deleted; comments are archived as part of the consultation record.",
		"form.privacy.time":    "Time of receipt: the time on your receipt is when this system received your comment.",
		"form.privacy.ask":     "Questions about your personal information can be addressed to %s.",
		"form.submit":          "Submit comment",
		"form.required":        "(required)",
		"form.error_item":      "%s: %s",
		"form.summary":         "Your comment was not submitted. Please fix the following:",
		"form.closed":          "This consultation has closed; your comment was not submitted. Your text is kept below so that you can copy it.",
		"form.not_open":        "This consultation opens on %s (%s); your comment was not submitted yet. You can submit it again then.",
		"form.reused":          "This form was already submitted once, with different content. To send this as a new comment, press “Submit comment” again.",
		"form.unavailable":     "The system cannot store comments right now; yours has not been submitted. What you wrote is kept below: please press “Submit comment” again in a little while.",
		"form.closed_page":     "This consultation closed on %s (%s). Comments are no longer accepted.",
		"form.upcoming_page":   "This consultation opens on %s (%s). You can comment from then.",
		"form.error_prefix":    "Error: ",
		"form.rate_limited":    "Many comments have come from your network in a short time, so the system cannot take yours right now; it has not been submitted. What you wrote is kept below: please press “Submit comment” again in %s.",
		"form.proof_missing":   "This consultation has your browser complete a security check before a comment is sent, and the check did not run (JavaScript may be switched off), so your comment has not been submitted. What you wrote is kept below: switch JavaScript on and press “Submit comment” again, or send your comment by letter or e-mail as announced by %s.",
		"form.proof_stale":     "The security check before sending has expired (the page was open a long time, or it was used already), so your comment has not been submitted. What you wrote is kept below: please press “Submit comment” again.",
		"form.body_incomplete": "Your comment did not reach the system whole (the connection may have dropped), so it has not been submitted. What arrived is kept below: please check and complete it, then press “Submit comment” again.",
		"form.body_timeout":    "Your comment took too long to arrive (the network may be slow), so it has not been submitted. What arrived is kept below: please check and complete it, then press “Submit comment” again.",
		"form.pow_note":        "To stop automated mass submissions, this page has your browser complete a security check. It usually takes a few seconds and needs nothing from you.",
		"form.pow_noscript":    "Comments on this consultation can only be submitted online with JavaScript switched on right now. If you cannot switch it on, you can send your comment by letter or e-mail as announced by %s.",
		"form.pow_working":     "Running the security check…",
		"form.pow_done":        "Security check complete: you can submit.",
		"form.pow_wait":        "Finishing the security check; your comment will be submitted as soon as it is done…",
		"form.pow_failed":      "Your browser could not complete the security check. Please try another browser, or send your comment in one of the other ways announced by %s.",
		"form.draft_full":      "This draft has received as many comments online as the system can hold, so yours was not submitted. Your text is kept below so that you can copy it and send it by letter or e-mail as announced by %s.",
		"form.hp":              "Leave this field empty",

		"err.body.required": "Please write your comment.",
		"err.body.too_long": "At most %d characters; this has %d. Please remove %d.",
		"err.too_long":      "At most %d characters; this has %d.",
		"err.utf8":          "Contains characters that could not be read; please type it again.",
		"err.section":       "The chosen section is not in this draft. Go back to the draft to choose one, or comment on the whole draft.",
		"err.category":      "Please choose one from the list.",
		"err.idempotency":   "This form is no longer valid (its idempotency key has at most %d printable ASCII characters); please reload the page and submit again.",
		"err.required":      "This is required.",
		"err.negative":      "Must not be negative.",

		"err.draft.id":                  "2 to 64 characters: lower-case letters, digits and hyphens, starting with a letter or digit.",
		"err.draft.kind":                "One of normative, major_decision, rule, other.",
		"err.draft.closes_required":     "Required, in RFC 3339, e.g. 2026-12-01T18:00:00+08:00.",
		"err.draft.closes_before_opens": "Must be after opens_at.",
		"err.draft.closes_past":         "Must be after the opening (now, when opens_at is left out).",
		"err.draft.opens_import":        "Required to import a consultation.",
		"err.draft.opens_past":          "More than %d minutes past: leave it out to publish now.",
		"err.draft.recipients_none":     "At least one e-mail address.",
		"err.draft.recipients_many":     "At most %d addresses.",
		"err.draft.recipient":           "%q is not a plain e-mail address.",
		"err.limits.pow_bits":           "From 0 (off) to %d.",
		"err.json.unknown":              "Unknown field.",
		"err.json.time":                 "Times are RFC 3339, e.g. 2026-12-01T18:00:00+08:00.",
		"err.json.type":                 "Must be a %s.",

		"category.individual":   "Individual",
		"category.enterprise":   "Enterprise",
		"category.organization": "Social organization",
		"category.expert":       "Expert or scholar",
		"category.public_body":  "State organ or public institution",
		"category.other":        "Other",

		"receipt.title":                "Comment receipt",
		"receipt.new":                  "Your comment has been submitted.",
		"receipt.code":                 "Receipt code",
		"receipt.keep":                 "Keep this code (write it down or take a screenshot): with it you can check your comment's status at any time.",
		"receipt.draft":                "Draft",
		"receipt.section":              "Comment on",
		"receipt.received":             "Received",
		"receipt.received_note":        "The time this system received your comment.",
		"receipt.status":               "Status",
		"receipt.sha":                  "Content digest (SHA-256)",
		"receipt.sha_hint":             "Lets anyone check that the comment has not changed since it was received.",
		"receipt.another":              "Look up another receipt",
		"receipt.status.queued":        "Received, being recorded",
		"receipt.status.accepted":      "Recorded",
		"receipt.status.rejected":      "Could not be recorded",
		"receipt.status_note.queued":   "Your comment has been received and is being added to the consultation record. Reload this page in a moment.",
		"receipt.status_note.accepted": "Your comment is in the consultation record and will be considered by the drafting body.",
		"receipt.status_note.rejected": "Your comment could not be added to the record. Please submit it again or contact the drafting body.",

		"lookup.title":        "Look up a receipt",
		"lookup.intro":        "Enter the receipt code you got when you submitted a comment to see its status.",
		"lookup.code":         "Receipt code",
		"lookup.code_hint":    "For example 12-ABCDE-FGHJK; case does not matter.",
		"lookup.submit":       "Look up",
		"lookup.result":       "Result",
		"lookup.not_found":    "No receipt has the code “%s”. Please check it and try again.",
		"lookup.view":         "View the receipt",
		"lookup.rate_limited": "Many receipts have been looked up from your network in a short time; please try again in %s.",
		"lookup.unavailable":  "Receipts cannot be looked up right now; please try again in a moment. Your comment is not affected.",

		"thanks.title": "Thank you for taking part",
		"thanks.p":     "Thank you for your interest in this consultation.",
		"thanks.back":  "Back to the draft",

		"nav.account":              "My account (%s)",
		"nav.logout":               "Sign out",
		"login.title":              "Staff sign-in",
		"login.intro":              "For the staff of drafting bodies, reviewers and administrators.",
		"login.name":               "User name",
		"login.password":           "Password",
		"login.submit":             "Sign in",
		"login.citizens":           "Members of the public need no account to comment or to look up a receipt.",
		"login.bad":                "Wrong user name or password.",
		"login.locked":             "Too many failed sign-ins: this account is locked for now. Please try again in %s.",
		"login.locked_address":     "Too many failed sign-ins from your network. Please try again in %s.",
		"login.disabled":           "This account is disabled. Please contact an administrator if you have questions.",
		"login.required":           "Please sign in first.",
		"login.logged_out":         "You have signed out.",
		"account.title":            "My account",
		"account.name":             "User name",
		"account.role":             "Role",
		"account.bureaus":          "Bureaus",
		"role.admin":               "Administrator",
		"role.bureau":              "Drafting body staff",
		"role.reviewer":            "Reviewer",
		"scope.read":               "Read only: read comments",
		"scope.write":              "Read and write: all this account may do",
		"account.tokens":           "API tokens",
		"account.tokens_intro":     "Programs call this system's API with a token, never with your password. A token is shown once, when it is made; revoke it when it is no longer needed.",
		"account.token_scope":      "Scope",
		"account.token_created":    "Created",
		"account.token_used":       "Last used",
		"account.token_never":      "Never",
		"account.token_revoke":     "Revoke",
		"account.token_none":       "You have no tokens.",
		"account.token_make":       "Make a new token",
		"account.token_label":      "What it is for",
		"account.token_label_hint": "For example “comment export script”, so that you know it later.",
		"account.token_submit":     "Make token",
		"account.token_new":        "New token: %s",
		"account.token_once":       "Copy it now and keep it safe: it cannot be shown again once you leave this page. If it is lost, revoke it and make a new one.",
		"account.token_revoked":    "The token has been revoked.",
		"account.password":         "Change password",
		"account.password_intro":   "Changing your password signs you out on every other device.",
		"account.current":          "Current password",
		"account.new":              "New password",
		"account.new_hint":         "At least %d characters. A sentence you can remember works well.",
		"account.confirm":          "New password again",
		"account.password_submit":  "Change password",
		"account.password_done":    "Your password has been changed, and you have been signed out on every other device.",
		"err.user.name":            "A user name has 2 to 64 characters: lower-case letters, digits and . _ -, starting with a letter or digit.",
		"err.user.bureau_required": "Drafting body staff belong to at least one bureau.",
		"err.user.bureau_role":     "Only drafting body staff belong to bureaus.",
		"err.user.role":            "The role is admin, bureau or reviewer.",
		"err.user.no_bureau":       "No such bureau.",
		"err.password.long":        "A password has at most %d bytes.",
		"err.password.short":       "A password has at least %d characters; this has %d.",
		"err.password.name":        "The password must not be the user name.",
		"err.password.current":     "The current password is wrong.",
		"err.password.confirm":     "The two new passwords differ.",
		"err.token.scope":          "Please choose a scope from the list.",
		"err.token.label":          "Please say what the token is for.",
		"err.bureau.required":      "Please name the bureau.",
		"error.forbidden":          "Not allowed",
		"error.forbidden.p":        "Your account may not do this. Please contact an administrator if you need to.",

		"error.title":               "Something went wrong",
		"error.home":                "Back to the consultations",
		"error.back_form":           "Back to the comment form",
		"error.ref":                 "Reference: %s",
		"error.draft_not_found":     "Draft not found",
		"error.draft_not_found.p":   "There is no such draft, or the link is wrong. Please choose a draft from the list of consultations.",
		"error.receipt_not_found":   "Receipt not found",
		"error.receipt_not_found.p": "There is no receipt with this code. Please check the code, or enter it again on the lookup page.",
		"error.not_found":           "Page not found",
		"error.not_found.p":         "The page you asked for does not exist, or the link is wrong.",
		"error.csrf":                "This form has expired",
		"error.csrf.p":              "To protect your submission, forms expire after a while; your comment was not submitted. Go back to the form, reload the page and submit again. If your text is long, copy it first.",
		"error.too_large":           "Too much to receive",
		"error.too_large.p":         "What you sent is larger than the system accepts; your comment was not submitted. A comment can be at most %d characters: please shorten it and submit again.",
		"error.unavailable":         "The service is busy",
		"error.unavailable.p":       "The system cannot handle your request right now; please try again in a moment. If you were submitting a comment, it was not submitted.",
		"error.internal":            "Something went wrong",
		"error.internal.p":          "The system ran into an error; please try again later. If it keeps happening, contact us with the reference below.",
		"error.bad_request":         "The request could not be handled",
		"error.bad_request.p":       "The request was malformed. Please go back and try again.",
		"error.conflict":            "This cannot be done now",
		"error.conflict.p":          "This cannot be done in the current state, for example because the consultation has closed.",
		"error.incomplete":          "The request did not arrive whole",
		"error.incomplete.p":        "What you sent did not reach the system whole (the connection may have dropped or been too slow), so nothing was done. Please go back and try again.",
		"error.rate_limited":        "Too many requests",
		"error.rate_limited.p":      "Many requests have come from your network in a short time; please try again in a little while.",
	},
}
