"""One entry per registered arch, used by ``test_all_archs.py``.

Each case: ``kwargs`` to build a tiny instance, ``input`` shape (N, C, H, W)
or (N, T, C, H, W), expected ``output`` shape, and optionally ``paper`` =
(kwargs of the paper-sized model, exact parameter count) to assert.
Add a case when you register an arch; the test fails for an arch without one.
"""

ARCH_CASES = {
    # A2N (paper Table 5): x2/x3 1,036,443, x4 1,047,459; A2N-M (non_attention
    # '1x1') 831,643 / 842,659; all six are checked in test_a2n_arch.py.
    'A2N': dict(
        kwargs=dict(num_feat=8, unf=8, num_block=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
        paper=(dict(upscale=2), 1_036_443),
    ),
    # DAN (paper: ~a quarter fewer than RCAN's 15.6M); default x3 model with
    # 5 residual units per DAB, see docs/models/dan.md and test_dan_arch.py.
    'DAN': dict(
        kwargs=dict(num_feat=8, num_block=3, num_res=1, reduction=4, distance=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
        paper=(dict(upscale=3), 11_460_745),
    ),
    # A2N's attention-dropout probe (paper Sec. 3.2, Table 2): all blocks with
    # attention 9,186,705 at x4 (paper 9.2 M); the other rows of Table 2 are
    # checked in test_attention_probe_arch.py.
    'AttentionProbe': dict(
        kwargs=dict(num_feat=8, unf=4, num_block=3, upscale=2, attention_blocks=[1, 3]),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
        paper=(dict(), 9_186_705),
    ),
    'Bicubic': dict(
        kwargs=dict(upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
        paper=(dict(upscale=4), 0),
    ),
    # MANA (x4 video, 7 frames -> centre): 14,317,508 with the coded 256
    # memory slots (paper's N = 512: +16,384); see test_mana_arch.py.
    'MANA': dict(
        kwargs=dict(
            num_feat=8,
            num_frames=3,
            num_encoder_blocks=1,
            num_decoder_blocks=1,
            embed_dim=4,
            num_groups=4,
            num_slots=8,
            hr_feat=8,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
        paper=(dict(), 14_317_508),
    ),
    # 'Name': dict(kwargs=dict(...), input=(1, 3, 8, 8), output=(1, 3, 16, 16),
    #              paper=(dict(...), 1_036_443)),
    # EDSR baseline (64 feats, 16 blocks): x4 1,517,571, x2 1,369,859.
    'EDSR': dict(
        kwargs=dict(num_feat=8, num_block=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
        paper=(dict(upscale=4), 1_517_571),
    ),
    # DASAA (x4 video, 5 frames -> centre): 1,752,991 (paper: 1.8M; the
    # authors' code: 1,841,419 incl. 73,856 unused); see test_dasaa_arch.py.
    'DASAA': dict(
        kwargs=dict(
            num_feat=8, num_rdb=1, rdb_layers=2, growth=4, reduction=2, pab_hidden=4, attn_chunk=16
        ),
        input=(1, 5, 3, 8, 8),
        output=(1, 3, 32, 32),
        paper=(dict(), 1_752_991),
    ),
    # EDVR-M (BasicSR's defaults: 64 feats, 5 frames, TSA, x4): 3,300,131;
    # EDVR-L 20,633,827; DKSAN's x16 baseline (EDVR-L, 7 frames) 20,994,787;
    # see test_edvr_arch.py (BasicSR's state-dict layout loads strictly).
    'EDVR': dict(
        kwargs=dict(
            num_feat=8,
            num_frame=3,
            deformable_groups=2,
            num_extract_block=1,
            num_reconstruct_block=1,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
        paper=(dict(), 3_300_131),
    ),
    # DKSAN (x16 video, 7 frames -> centre, four x2 levels): 30,297,600
    # (paper: 29.5M; Table 3's 26.1M / 26.3M rows match); see
    # test_dksan_arch.py and docs/models/dksan.md. Tiny case: x4, 3 frames.
    'DKSAN': dict(
        kwargs=dict(
            num_feat=8,
            num_frames=3,
            upscale=4,
            num_extract_blocks=1,
            num_rcab=[1, 1],
            reduction=4,
            align_dkc=1,
            deform_groups=2,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
        paper=(dict(), 30_297_600),
    ),
}
