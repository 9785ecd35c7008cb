"""Staff roles: seeded groups whose permissions decide who may import, export, see
personal data unmasked, record consent, handle data subject requests, erase, and manage
partners. Staff get a role by joining the group; the administrator may adjust a group,
and migrations only ever add what is listed here, never take away."""
VIEW_CUSTOMERS = [
    "profiles.view_profile", "profiles.view_identity", "profiles.view_event", "profiles.view_profileactivity",
    "profiles.view_tag", "profiles.view_tagcategory", "profiles.view_profiletag", "profiles.view_eventdefinition",
    "segments.view_segment", "segments.view_segmentsnapshot", "consent.view_purpose", "consent.view_notice",
]
BUILD_SEGMENTS = ["segments.add_segment", "segments.change_segment"]
# The tracking sources' pages show traffic and masked messages (never a key): who builds
# segments sees which events arrive and why some were refused.
ANALYSE_BEHAVIOUR = ["segments.view_savedanalysis", "segments.add_savedanalysis", "segments.change_savedanalysis",
                     "profiles.view_collectsource"]
READ_CAMPAIGNS = ["campaigns.view_campaign", "campaigns.view_variant", "campaigns.view_campaign_results",
                  "campaigns.view_delivery", "campaigns.view_destination", "campaigns.view_couponpool"]
# Marketers draft, preview, test-send and launch; launches above CAMPAIGN_APPROVAL_THRESHOLD
# wait for someone with approve_campaign (the administrator).
RUN_CAMPAIGNS = [*READ_CAMPAIGNS, "campaigns.add_campaign", "campaigns.change_campaign", "campaigns.add_variant",
                 "campaigns.change_variant", "campaigns.delete_variant", "campaigns.launch_campaign",
                 "campaigns.add_couponpool"]

ROLES = {
    "营销 marketer": [
        *VIEW_CUSTOMERS, *BUILD_SEGMENTS, *ANALYSE_BEHAVIOUR,
        "profiles.change_profile", "profiles.add_profiletag", "profiles.delete_profiletag",
        "segments.export_segment", "profiles.add_importjob", "profiles.view_importjob", *RUN_CAMPAIGNS,
    ],
    "分析师 analyst": [*VIEW_CUSTOMERS, *BUILD_SEGMENTS, *ANALYSE_BEHAVIOUR, *READ_CAMPAIGNS],
    "隐私专员 privacy officer": [
        *VIEW_CUSTOMERS, "profiles.view_personal_data",
        "consent.view_consentrecord", "consent.add_consentrecord", "consent.view_consentstate",
        "consent.view_donotcontact", "consent.add_donotcontact", "consent.change_donotcontact",
        "consent.view_datasubjectrequest", "consent.add_datasubjectrequest", "consent.change_datasubjectrequest",
        "consent.erase_profile", "consent.view_suppression", "consent.view_erasurenotice",
        "consent.add_notice", "consent.change_purpose", "cdp.view_auditlog",
        # exports for a purpose with its channel's contact (phones for SMS) unmasked, audited;
        # marketers get this only when the administrator grants it to them
        "segments.export_segment", "segments.export_contact_data",
        # consent arrives in bulk too, and the officer checks that erased people stay out
        "profiles.add_importjob", "profiles.view_importjob",
    ],
    "管理员 administrator": ["*"],  # every permission of the product's apps and of staff accounts
}
ADMIN_APPS = ("profiles", "segments", "consent", "campaigns", "cdp", "auth")


def roles_seed(sender=None, using="default", **kwargs):
    """post_migrate: create the role groups and add their listed permissions."""
    from django.contrib.auth.models import Group, Permission

    if not Permission.objects.using(using).exists():
        return
    for name, wanted in ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        if wanted == ["*"]:
            permissions = Permission.objects.using(using).filter(content_type__app_label__in=ADMIN_APPS)
        else:
            pairs = [codename.split(".") for codename in wanted]
            permissions = [p for p in Permission.objects.using(using).filter(
                codename__in=[c for _, c in pairs]).select_related("content_type")
                if [p.content_type.app_label, p.codename] in pairs]
        group.permissions.add(*permissions)
