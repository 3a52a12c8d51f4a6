package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"consult/drafts"
	"consult/record"
	"consult/store"
)

// demoDraft is loaded on a first start with an empty store, so that a newcomer who
// runs `make run` sees a working consultation, published at once (no OpensAt). It follows the county implementation
// plan in the project's legal notes, with the 30-day window the law's benchmark asks.
func demoDraft(now time.Time) drafts.Draft {
	return drafts.Draft{
		ID:     "hongya-fazhi-2026",
		Title:  "洪雅县法治政府建设实施方案（征求意见稿）",
		Bureau: "洪雅县司法局",
		Kind:   drafts.KindOther,
		Summary: "为深入推进依法行政，加快建设法治政府，县司法局起草了本实施方案。" +
			"起草过程中，我们梳理了近年来全县法治政府建设的进展和不足，参考了上级有关文件。" +
			"现向社会公开征求意见，欢迎对任何条款提出意见和建议。",
		Text: `为深入贯彻落实法治政府建设实施纲要，结合我县实际，制定本方案。
一、总体要求
（一）指导思想。坚持以人民为中心，把法治政府建设作为全面依法治县的重点任务和主体工程。
（二）主要目标。到2027年，政府行为全面纳入法治轨道，职责明确、依法行政的政府治理体系日益健全。
二、主要任务
（三）依法全面履行政府职能。推进政府机构职能优化协同高效，深化“放管服”改革。
1.全面实行政府权责清单制度，动态调整并向社会公布。
2.持续优化营商环境，依法平等保护各类市场主体产权和合法权益。
（四）健全依法行政制度体系。加强规范性文件监督管理，严格落实合法性审核。
（五）推进行政决策科学化民主化法治化。严格落实重大行政决策程序，决策草案应当向社会公开征求意见，期限一般不少于30日。
（六）坚持严格规范公正文明执法。全面推行行政执法公示、执法全过程记录、重大执法决定法制审核制度。
三、保障措施
（七）加强组织领导。各乡镇、各部门主要负责人要切实履行推进法治建设第一责任人职责。
（八）加强督促落实。县司法局负责对本方案落实情况进行跟踪评估，每年向社会公开。
`,
		ClosesAt:         now.AddDate(0, 0, 30),
		DigestRecipients: []string{"fazhi@hongya.example.gov.cn"},
	}
}

// loadDemo stores the demo consultation if the store has never held a draft.
func loadDemo(ctx context.Context, ds *store.Drafts, now time.Time) (bool, error) {
	empty, err := ds.Empty(ctx)
	if err != nil || !empty {
		return false, err
	}
	if _, err := ds.Create(ctx, record.System, demoDraft(now)); err != nil && !errors.Is(err, drafts.ErrExists) {
		return false, fmt.Errorf("demo: %w", err)
	}
	return true, nil
}
