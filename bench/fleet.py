"""Deterministic synthetic fleet: health systems and their facilities as hand-written-looking YAML.

    python bench/fleet.py OUT_DIR --facilities 1000 [--seed 0] [--systems M] [--changed 0.01 --round 1] [--flat]

Writes one directory per organization under OUT_DIR:

- about one health system per 20 facilities (`<name>-health-NNN/`): `profile.yaml`, `steps.yaml`
  (system-wide steps, several with `all_services: true`, the rest a library facilities opt into),
  `staff.yaml`, and `templates.yaml`: a service template for every service of the catalog (name,
  department, disciplines), and `agreements.yaml`: a few system-wide schools and agreements (`covers:
  all` or a label selector) that some of its facilities' coordinator-scheduled windows name as
  `<system>/<key>`;
- every facility (`<name>-<kind>-NNNN/`, `metadata.parent: <its system>`): `profile.yaml`,
  `steps.yaml` (15 steps), `services.yaml` (30 services with 100 nested capacity windows),
  `agreements.yaml` (20 schools + 20 agreements), `staff.yaml` (5 people) — 191 items and about
  59 KB of YAML, with comments, quoted, folded and literal strings, flow and block lists.

Each facility service says `template: <key>` and writes only what differs from its system's template
(`department: null` where it has none). `flat=True` (`--flat`) writes every service in full, no templates
and no system-wide agreement, as generator version 3 did with `--flat`; `shared=False` keeps the templates
and leaves out the system-wide agreements (generator 3's default output); `flat=True, shared=True` is the
default fleet with its services written in full.

Everything satisfies shared/spec/FORMAT.md (`nexus/v1`): key patterns, capacity disciplines within the
service's (and the linked agreement's) disciplines, valid dates with end >= start, coordinator-scheduled
windows inside the dates of an agreement that covers their service, step references resolvable in the
organization or its parent, `fields` only on forms, `options` only on selects, agreements naming a
school of the organization.

Deterministic: the same arguments give byte-identical files. Each organization draws from its own
`random.Random` seeded with a string built from (seed, kind, index) — string seeds are hashed with
SHA-512 by `random`, so they do not depend on PYTHONHASHSEED or the platform. Nothing reads the clock
or the global `random` state.

`changed_fraction` / `change_round`: the same fleet, except that `round(changed_fraction * facilities)`
facilities (at least one when the fraction is > 0), chosen by a generator seeded with (seed, round),
get a few values changed: the slots of three capacity windows, one service name and one agreement's
reminder days. Items are never added, removed or re-keyed, so a plan against the unchanged fleet shows
only in-place updates. Different rounds change different facilities and values.

YAML is written from string templates (no YAML library): 1,000 facilities (~60 MB) take ~5 s.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GENERATOR_VERSION", "MANIFEST", "default_systems", "read_manifest", "write_fleet"]

GENERATOR_VERSION = 4
"""Bumped whenever output changes for the same arguments (bench_load.py regenerates on mismatch)."""

MANIFEST = ".fleet.json"
"""Written in OUT_DIR; hidden, so nexus' discovery skips it. Lists the parameters and the org dirs."""

SCHEMA_LINE = "# yaml-language-server: $schema=https://nexus.example.org/schemas/v1/nexus.schema.json"

# --------------------------------------------------------------------------------------------- scalars

_YAML11_WORDS = frozenset(
    [
        "y",
        "n",
        "yes",
        "no",
        "on",
        "off",
        "true",
        "false",
        "null",
        "~",
        "nan",
        "inf",
        ".nan",
        ".inf",
        "-.inf",
        "+.inf",
    ]
)
_NUMBERISH = re.compile(r"^[-+]?(\.?[0-9][0-9_.:eExXoObB+-]*)$")
_BAD_START = frozenset("-?:,[]{}#&*!|>'\"%@` ")


@functools.cache
def q(value: str) -> str:
    """`value` as a block-context YAML scalar: plain when that reads back as the same string."""
    if (
        value
        and value[0] not in _BAD_START
        and value[-1] not in ": "
        and ": " not in value
        and " #" not in value
        and "\n" not in value
        and value.lower() not in _YAML11_WORDS
        and not _NUMBERISH.match(value)
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


@functools.cache
def qf(value: str) -> str:
    """`value` as an item of a flow list (`[a, b]`): also quotes commas and brackets."""
    plain = q(value)
    if plain is value and not any(c in value for c in ",[]{}"):
        return value
    return json.dumps(value, ensure_ascii=False)


def flow(values: list[str]) -> str:
    return "[" + ", ".join(qf(v) for v in values) + "]"


def folded(lines: list[str], indent: str, style: str = ">") -> str:
    """A folded (`>`) or literal (`|`) block scalar whose lines sit at `indent`."""
    return style + "\n" + "\n".join(indent + line for line in lines)


def wrap(text: str, width: int = 96) -> list[str]:
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def b(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------------------------- catalogs

# fmt: off
DISCIPLINES = (
    "medicine", "nursing", "nurse_practitioner", "physician_assistant", "pharmacy", "physical_therapy",
    "occupational_therapy", "respiratory_therapy", "radiologic_technology", "social_work", "dietetics",
    "other",
)

# key, name, department, disciplines, specialties
SERVICES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("emergency-medicine", "Emergency Medicine", "Emergency Services",
     ("medicine", "physician_assistant", "nursing", "nurse_practitioner"),
     ("Trauma", "Toxicology", "Ultrasound")),
    ("internal-medicine", "Internal Medicine — Hospitalist Service", "Department of Medicine",
     ("medicine", "physician_assistant", "nurse_practitioner"), ("Hospital Medicine", "Geriatrics")),
    ("family-medicine", "Family Medicine", "Primary Care",
     ("medicine", "physician_assistant", "nurse_practitioner"), ("Rural Health", "Obstetrics", "Procedures")),
    ("general-surgery", "General Surgery", "Surgical Services",
     ("medicine", "physician_assistant", "nursing"),
     ("Acute Care Surgery", "Bariatrics", "Minimally Invasive")),
    ("orthopedics", "Orthopedic Surgery", "Surgical Services",
     ("medicine", "physician_assistant", "physical_therapy"), ("Sports Medicine", "Joint Replacement")),
    ("pediatrics", "Pediatrics", "Women's & Children's", ("medicine", "nursing", "nurse_practitioner"),
     ("General Pediatrics", "Adolescent Medicine")),
    ("nicu", "Neonatal Intensive Care", "Women's & Children's",
     ("nursing", "respiratory_therapy", "nurse_practitioner"), ("Level III NICU", "Neonatology")),
    ("labor-delivery", "Labor & Delivery", "Women's & Children's", ("nursing", "medicine"),
     ("High-Risk Obstetrics", "Midwifery")),
    ("med-surg-nursing", "Med-Surg Nursing", "Nursing — Adult Inpatient", ("nursing",),
     ("Telemetry", "Orthopedic Surgery", "General Surgery")),
    ("icu", "Adult Intensive Care", "Critical Care",
     ("nursing", "medicine", "respiratory_therapy", "pharmacy"), ("Medical ICU", "Surgical ICU", "ECMO")),
    ("cardiology", "Cardiology & Cath Lab", "Heart & Vascular Institute",
     ("medicine", "nursing", "physician_assistant"), ("Interventional Cardiology", "Electrophysiology")),
    ("oncology", "Oncology & Infusion Center", "Cancer Institute",
     ("medicine", "nursing", "pharmacy", "nurse_practitioner"),
     ("Medical Oncology", "Infusion", "Hematology")),
    ("behavioral-health", "Inpatient Behavioral Health", "Behavioral Health",
     ("nursing", "social_work", "medicine", "nurse_practitioner"),
     ("Adult Psychiatry", "Addiction Medicine")),
    ("inpatient-pharmacy", "Inpatient Pharmacy", "Pharmacy Services", ("pharmacy",),
     ("Acute Care", "Antimicrobial Stewardship", "Oncology Infusion")),
    ("ambulatory-pharmacy", "Ambulatory Care Pharmacy", "Pharmacy Services", ("pharmacy",),
     ("Anticoagulation", "Diabetes Management")),
    ("acute-rehab", "Physical Therapy — Acute Care & Inpatient Rehab", "Rehabilitation Services",
     ("physical_therapy", "occupational_therapy"), ("Neurologic Rehabilitation", "ICU Early Mobility")),
    ("outpatient-pt", "Outpatient Physical Therapy", "Rehabilitation Services", ("physical_therapy",),
     ("Orthopedics", "Vestibular", "Pelvic Health")),
    ("hand-therapy", "Occupational Therapy — Hand Clinic", "Rehabilitation Services",
     ("occupational_therapy",), ("Hand Therapy", "Splinting")),
    ("respiratory-care", "Respiratory Care", "Cardiopulmonary Services", ("respiratory_therapy",),
     ("Mechanical Ventilation", "Pulmonary Function Testing")),
    ("diagnostic-imaging", "Diagnostic Imaging", "Radiology", ("radiologic_technology", "medicine"),
     ("CT", "MRI", "Interventional Radiology")),
    ("mammography", "Breast Imaging Center", "Radiology", ("radiologic_technology",),
     ("Mammography", "Breast Ultrasound")),
    ("case-management", "Case Management & Social Work", "Care Coordination", ("social_work", "nursing"),
     ("Discharge Planning", "Utilization Review")),
    ("clinical-nutrition", "Clinical Nutrition", "Food & Nutrition Services", ("dietetics",),
     ("Medical Nutrition Therapy", "Enteral & Parenteral Nutrition")),
    ("diabetes-education", "Diabetes Education & Nutrition", "Endocrinology",
     ("dietetics", "nursing", "other"), ("Diabetes Self-Management", "Insulin Pumps")),
    ("neurology", "Neurology & Stroke Unit", "Neurosciences", ("medicine", "nursing", "physician_assistant"),
     ("Stroke", "Epilepsy")),
    ("perioperative", "Perioperative Services (OR/PACU)", "Surgical Services", ("nursing", "other"),
     ("Circulating", "Scrub", "PACU")),
    ("dialysis", "Dialysis Unit", "Nephrology", ("nursing", "dietetics", "social_work"),
     ("Hemodialysis", "Peritoneal Dialysis")),
    ("wound-care", "Wound Care & Hyperbaric Medicine", "Specialty Clinics",
     ("nursing", "physical_therapy", "nurse_practitioner"), ("Hyperbaric Oxygen", "Ostomy")),
    ("palliative-care", "Palliative Care & Hospice", "Supportive Care",
     ("medicine", "nursing", "social_work"), ("Hospice", "Symptom Management")),
    ("urgent-care", "Urgent Care Clinic", "Primary Care",
     ("physician_assistant", "nurse_practitioner", "medicine"), ("Minor Procedures", "Occupational Health")),
    ("geriatrics", "Geriatrics & Transitional Care", "Senior Services",
     ("medicine", "nursing", "occupational_therapy", "social_work"), ("Transitional Care", "Memory Care")),
    ("infectious-disease", "Infectious Disease", "Department of Medicine", ("medicine", "pharmacy"),
     ("HIV Care", "Antimicrobial Stewardship")),
    ("speech-swallow", "Speech & Swallowing Clinic", "Rehabilitation Services",
     ("other", "occupational_therapy"), ("Dysphagia", "Voice")),
    ("community-health", "Community Health Outreach", "Population Health",
     ("nursing", "social_work", "dietetics", "other"), ("Mobile Clinic", "School Health")),
    ("sleep-lab", "Sleep Disorders Center", "Cardiopulmonary Services", ("respiratory_therapy", "other"),
     ("Polysomnography",)),
    ("pulmonology", "Pulmonology Clinic", "Department of Medicine",
     ("medicine", "respiratory_therapy", "physician_assistant"), ("Interstitial Lung Disease", "Asthma")),
    ("womens-health", "Women's Health Clinic", "Women's & Children's",
     ("nurse_practitioner", "medicine", "nursing"), ("Gynecology", "Prenatal Care")),
    ("endocrinology", "Endocrinology Clinic", "Endocrinology",
     ("medicine", "nurse_practitioner", "dietetics"), ("Thyroid", "Diabetes")),
    ("gastroenterology", "GI & Endoscopy", "Digestive Health", ("medicine", "nursing"),
     ("Endoscopy", "Hepatology")),
    ("psych-outpatient", "Outpatient Mental Health", "Behavioral Health",
     ("social_work", "nurse_practitioner", "medicine"), ("Child & Adolescent", "Trauma-Informed Care")),
    ("nuclear-medicine", "Nuclear Medicine & PET", "Radiology", ("radiologic_technology",),
     ("PET/CT", "SPECT")),
    ("home-health", "Home Health", "Home & Community Care",
     ("nursing", "physical_therapy", "occupational_therapy", "social_work"), ("Home Infusion", "Telehealth")),
)

LOCATIONS = (
    "Main Campus, Level 1", "Main Campus, Lower Level", "Tower A, floor 3", "Tower B, floors 4 and 5",
    "North Pavilion", "Outpatient Center, Suite 200", "Heritage Building", "East Wing, 2nd floor",
    "Medical Office Building 2", "South Campus", "Cancer Center, Level 2", "Rehab Annex",
)

# Fields for form steps: key, label, type, options
FIELDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("emergency-contact-name", "Emergency contact name", "text", ()),
    ("emergency-contact-phone", "Emergency contact phone", "text", ()),
    ("preferred-start", "Preferred start date", "date", ()),
    ("shift-preference", "Shift preference", "select", ("Days", "Evenings", "Nights", "No preference")),
    ("prior-experience", "Prior clinical experience", "textarea", ()),
    ("languages", "Languages spoken with patients", "select",
     ("English only", "Spanish", "Hmong", "Somali", "Vietnamese", "Other")),
    ("year-in-program", "Year in program", "number", ()),
    ("scrub-size", "Scrub size", "select", ("XS", "S", "M", "L", "XL", "2XL")),
    ("parking-needed", "I need a parking permit", "checkbox", ()),
    ("vehicle-plate", "License plate (state and number)", "text", ()),
    ("attestation", "I attest that the information above is accurate", "checkbox", ()),
    ("completed-on", "Date completed", "date", ()),
    ("vendor", "Background check vendor", "select",
     ("CastleBranch", "Verified Credentials", "American DataBank", "Other")),
    ("notes", "Notes for the coordinator", "textarea", ()),
    ("npi-number", "Preceptor NPI", "number", ()),
    ("preceptor-name", "Preceptor name", "text", ()),
    ("overall-rating", "Overall, how would you rate this rotation?", "select",
     ("Excellent", "Good", "Fair", "Poor")),
    ("hours-completed", "Clinical hours completed", "number", ()),
    ("would-recommend", "Would you recommend this site to a classmate?", "checkbox", ()),
    ("comments", "What should we keep or change?", "textarea", ()),
    ("fit-test-model", "Respirator model fitted", "select",
     ("3M 1860", "3M 1870+", "Halyard Fluidshield", "Moldex 1512", "Other: see notes")),
    ("learning-goals", "Your learning goals for this rotation", "textarea", ()),
)

# key, stage, name, type, completed_by, description, instructions, due_days, expires_after_days
FACILITY_STEPS: tuple[tuple[str, str, str, str, str, str, str, int | None, int | None], ...] = (
    ("rotation-preferences", "application", "Rotation Preferences", "form", "student",
     "Tell us which units, shifts and dates work for you so we can match you with a preceptor.", "", 45,
     None),
    ("cover-letter", "application", "Cover Letter", "upload", "student",
     "One page on why you want to rotate here and what you hope to learn.", "PDF only, at most 2 MB.", 60,
     None),
    ("cv-resume", "application", "CV or Résumé", "upload", "student", "", "", 60, None),
    ("good-standing-letter", "application", "Letter of Good Standing", "upload", "school_coordinator",
     "Letter from the program confirming the student is in good academic and professional standing.", "", 30,
     None),
    ("interview-availability", "application", "Interview Availability", "form", "student",
     "Some units interview candidates by video before confirming a placement.", "", 40, None),
    ("n95-fit-test", "onboarding", "N95 Respirator Fit Test", "upload", "student",
     "Quantitative or qualitative fit test on a model stocked by this facility, within the last 12 months.",
     "Upload the fit-test card or the employee-health printout.", 14, 365),
    ("unit-orientation", "onboarding", "Unit Orientation", "checkbox", "site_coordinator",
     "The unit educator walked the student through codes, exits, supply rooms and the huddle board.", "", 0,
     None),
    ("clinical-faculty-roster", "onboarding", "Clinical Faculty Roster", "form", "school_coordinator",
     "Name and license of every clinical instructor supervising a cohort on site.", "", 21, None),
    ("faculty-unit-orientation", "onboarding", "Faculty Unit Orientation", "checkbox", "faculty",
     "Clinical instructors complete the unit orientation before their first cohort day.", "", 7, 730),
    ("controlled-substance-policy", "onboarding", "Controlled Substance Policy", "checkbox", "student",
     "Acknowledge the diversion-prevention policy: students never waste or witness controlled substances.",
     "", 7, None),
    ("trauma-bay-safety-video", "onboarding", "Trauma Bay Safety Video", "checkbox", "student",
     "Twelve-minute video on trauma-bay roles, radiation safety and sharps.", "", 3, None),
    ("malpractice-certificate", "onboarding", "Professional Liability Certificate", "upload",
     "school_coordinator", "Certificate of insurance showing at least $1M per occurrence / $3M aggregate.",
     "", 30, 365),
    ("drug-screen-result", "onboarding", "10-Panel Drug Screen", "upload", "student",
     "Negative 10-panel urine drug screen collected within 30 days before the start date.", "", 10, None),
    ("flu-vaccination", "onboarding", "Influenza Vaccination", "upload", "student",
     "Proof of current-season influenza vaccination, or an approved medical or religious exemption.",
     "Required from October 1 through March 31.", 14, 365),
    ("emergency-contact", "onboarding", "Emergency Contact", "form", "student", "", "", 7, None),
    ("scrubs-and-lockers", "onboarding", "Scrubs & Locker Request", "form", "student",
     "Scrub machine access and a day locker near the unit.", "", 7, None),
    ("computer-training", "onboarding", "EHR Computer Training", "upload", "student",
     "Certificate from the four-hour student EHR e-learning.", "", 10, 365),
    ("radiation-safety", "onboarding", "Radiation Safety Training", "upload", "student",
     "Annual radiation-safety module for imaging and cath-lab rotations.", "", 14, 365),
    ("preceptor-agreement", "onboarding", "Preceptor Agreement", "form", "faculty",
     "Confirms the preceptor, the learning objectives and the evaluation schedule.", "", 14, None),
    ("parking-permit", "onboarding", "Parking Permit", "form", "student", "", "", 5, None),
    ("confidentiality-pledge", "onboarding", "Confidentiality Pledge", "checkbox", "student",
     "Sign the facility confidentiality pledge (separate from your school's HIPAA training).", "", 7, 365),
    ("preceptor-evaluation", "offboarding", "Preceptor Evaluation of Student", "form", "faculty",
     "The preceptor's final evaluation, shared with the school.", "", 14, None),
    ("student-site-evaluation", "offboarding", "Student Evaluation of Site", "form", "student",
     "Anonymous feedback on the unit, the preceptor and the onboarding process.", "", 10, None),
    ("hours-log", "offboarding", "Clinical Hours Log", "upload", "student",
     "Signed log of clinical hours, countersigned by the preceptor.", "", 7, None),
    ("ehr-access-removed", "offboarding", "EHR Access Removed", "checkbox", "site_coordinator", "", "", 1,
     None),
    ("exit-survey", "offboarding", "Exit Survey", "form", "student", "", "", 14, None),
    ("locker-returned", "offboarding", "Locker & Scrub Card Returned", "checkbox", "site_coordinator", "", "",
     0, None),
    ("case-log", "offboarding", "Procedure & Case Log", "upload", "student",
     "Export of the procedure log your program requires (Typhon, Exxat or similar).", "", 10, None),
)

# key, stage, name, type, completed_by, description, due_days, expires_after_days, all_services
SYSTEM_STEPS: tuple[tuple[str, str, str, str, str, str, int | None, int | None, bool], ...] = (
    ("code-of-conduct", "application", "Student Code of Conduct", "checkbox", "student",
     "Acknowledge the system's Student & Learner Code of Conduct.", None, None, True),
    ("hipaa-training", "onboarding", "HIPAA Privacy & Security Training", "upload", "student",
     "Certificate of completion for the system HIPAA e-learning module (about 45 minutes).", 14, 365, True),
    ("immunization-records", "onboarding", "Immunization Records", "upload", "student",
     "Proof of MMR, varicella, hepatitis B, Tdap, current-season influenza and COVID-19 vaccination "
     "(or titers / approved exemption).",
     21, None, True),
    ("tb-screening", "onboarding", "Tuberculosis Screening", "upload", "student",
     "Negative IGRA (QuantiFERON) or two-step TST within the last 12 months.", 21, 365, True),
    ("background-check", "onboarding", "Background Check Attestation", "form", "school_coordinator",
     "The school attests that a criminal background check and OIG/SAM exclusion screen were completed.", 30,
     None, True),
    ("epic-access-request", "onboarding", "Epic Access Request", "form", "site_coordinator",
     "Requests a student Epic account with the right security template for the unit.", 10, None, False),
    ("badge-photo", "onboarding", "ID Badge Photo", "upload", "student",
     "Head-and-shoulders photo, plain light background, JPG or PNG.", 7, None, False),
    ("system-drug-screen", "onboarding", "System Drug Screen Attestation", "checkbox", "school_coordinator",
     "The school attests a negative drug screen within 30 days of the start date.", 10, None, False),
    ("bloodborne-pathogens", "onboarding", "Bloodborne Pathogens Training", "upload", "student",
     "OSHA bloodborne pathogens module, renewed yearly.", 14, 365, False),
    ("badge-return", "offboarding", "ID Badge & Parking Card Returned", "checkbox", "site_coordinator", "", 0,
     None, True),
    ("learner-experience-survey", "offboarding", "Learner Experience Survey", "form", "student",
     "Anonymous survey used by Clinical Education to improve rotations across the system.", 14, None, True),
    ("system-exit-attestation", "offboarding", "Records Return Attestation", "checkbox", "student",
     "Confirm that no patient information left the building with you.", 1, None, False),
)

# key, name, disciplines, on the platform
SCHOOLS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("umn-nursing", "University of Minnesota School of Nursing", ("nursing", "nurse_practitioner")),
    ("umn-medical", "University of Minnesota Medical School", ("medicine",)),
    ("umn-pharmacy", "University of Minnesota College of Pharmacy", ("pharmacy",)),
    ("augsburg-pa", "Augsburg University Physician Assistant Program", ("physician_assistant",)),
    ("st-cloud-state", "St. Cloud State University — Department of Nursing Science", ("nursing",)),
    ("st-kates-dpt", "St. Catherine University — Doctor of Physical Therapy", ("physical_therapy",)),
    ("st-kates-ot", "St. Catherine University — Occupational Therapy", ("occupational_therapy",)),
    ("mayo-medicine", "Mayo Clinic Alix School of Medicine", ("medicine",)),
    ("mayo-health-sciences", "Mayo Clinic School of Health Sciences",
     ("radiologic_technology", "respiratory_therapy", "physical_therapy")),
    ("winona-state-nursing", "Winona State University College of Nursing", ("nursing", "nurse_practitioner")),
    ("concordia-pa", "Concordia University Physician Assistant Program", ("physician_assistant",)),
    ("bethel-pa", "Bethel University PA Program", ("physician_assistant",)),
    ("bethel-nursing", "Bethel University Nursing", ("nursing",)),
    ("duluth-medical", "University of Minnesota Medical School, Duluth Campus", ("medicine",)),
    ("mankato-nursing", "Minnesota State University, Mankato — School of Nursing", ("nursing",)),
    ("mankato-dietetics", "Minnesota State University, Mankato — Dietetics", ("dietetics",)),
    ("usd-health-sciences", "University of South Dakota — School of Health Sciences",
     ("physician_assistant", "social_work", "physical_therapy", "occupational_therapy")),
    ("sdsu-nursing", "South Dakota State University College of Nursing", ("nursing", "nurse_practitioner")),
    ("sdsu-pharmacy", "South Dakota State University College of Pharmacy", ("pharmacy",)),
    ("und-medicine", "University of North Dakota School of Medicine & Health Sciences",
     ("medicine", "physician_assistant", "occupational_therapy", "physical_therapy")),
    ("ndsu-pharmacy", "North Dakota State University School of Pharmacy", ("pharmacy", "nursing")),
    ("uw-madison-nursing", "University of Wisconsin–Madison School of Nursing",
     ("nursing", "nurse_practitioner")),
    ("uw-madison-pharmacy", "University of Wisconsin–Madison School of Pharmacy", ("pharmacy",)),
    ("uw-lacrosse-rt", "UW–La Crosse Radiation Therapy & Radiologic Science", ("radiologic_technology",)),
    ("marquette-pa", "Marquette University Physician Assistant Studies", ("physician_assistant",)),
    ("marquette-nursing", "Marquette University College of Nursing", ("nursing", "nurse_practitioner")),
    ("mcw-medicine", "Medical College of Wisconsin", ("medicine", "pharmacy")),
    ("iowa-nursing", "University of Iowa College of Nursing", ("nursing", "nurse_practitioner")),
    ("iowa-carver", "University of Iowa Carver College of Medicine", ("medicine", "physician_assistant")),
    ("drake-pharmacy", "Drake University College of Pharmacy & Health Sciences", ("pharmacy",)),
    ("dmu-osteopathic", "Des Moines University Osteopathic Medicine", ("medicine", "physical_therapy")),
    ("creighton-pharmacy", "Creighton University School of Pharmacy", ("pharmacy", "occupational_therapy")),
    ("unmc-allied-health", "UNMC College of Allied Health Professions",
     ("radiologic_technology", "physician_assistant", "dietetics")),
    ("ucsf-nursing", "UCSF School of Nursing", ("nursing", "nurse_practitioner")),
    ("rush-nursing", "Rush University College of Nursing", ("nursing", "nurse_practitioner")),
    ("loyola-msw", "Loyola University Chicago School of Social Work", ("social_work",)),
    ("uic-pharmacy", "University of Illinois Chicago College of Pharmacy", ("pharmacy",)),
    ("northwestern-pt", "Northwestern University Physical Therapy & Human Movement Sciences",
     ("physical_therapy",)),
    ("msw-augsburg", "Augsburg University Master of Social Work", ("social_work",)),
    ("umn-social-work", "University of Minnesota School of Social Work", ("social_work",)),
    ("century-rt", "Century College Respiratory Therapist Program", ("respiratory_therapy",)),
    ("rochester-cc-rad", "Rochester Community & Technical College Radiography", ("radiologic_technology",)),
    ("st-scholastica-ot", "College of St. Scholastica — Occupational Therapy",
     ("occupational_therapy", "physical_therapy")),
    ("st-scholastica-nursing", "College of St. Scholastica School of Nursing", ("nursing",)),
    ("hennepin-tech-surg", "Hennepin Technical College Surgical Technology", ("other",)),
    ("minneapolis-cc-nursing", "Minneapolis College Nursing (ADN)", ("nursing",)),
    ("alexandria-tech", "Alexandria Technical & Community College — Practical Nursing", ("nursing",)),
    ("uwstout-dietetics", "UW–Stout Dietetics", ("dietetics",)),
    ("ndsu-nutrition", "NDSU Dietetic Internship", ("dietetics",)),
    ("gustavus-nursing", "Gustavus Adolphus College Nursing", ("nursing",)),
    ("clarkson-rt", "Clarkson College Radiologic Technology", ("radiologic_technology", "nursing")),
    ("allina-speech", "Minnesota State Speech-Language Pathology Consortium", ("other",)),
    ("upper-iowa-msw", "Upper Iowa University Social Work", ("social_work",)),
    ("slu-pa", "Saint Louis University PA Program", ("physician_assistant", "physical_therapy")),
    ("rosalind-franklin", "Rosalind Franklin University — Chicago Medical School",
     ("medicine", "pharmacy", "physician_assistant")),
)

FIRST = (
    "Dana", "Miguel", "Priya", "Karen", "Jamal", "Hannah", "Aisha", "Tomás", "Mei", "Olga", "Kwame", "Sofia",
    "Liam", "Noor", "Erik", "Fatima", "Gabriel", "Ingrid", "Javier", "Keiko", "Lars", "Maya", "Nikolai",
    "Oluwaseun", "Paula", "Rashid", "Sven", "Thu", "Uma", "Yusuf", "Zoe", "Bao", "Chioma",
)
LAST = (
    "Okafor", "Santos", "Raman", "Lindqvist", "Whitfield", "Vue", "Hassan", "Nguyen", "Johansson",
    "Eagleheart", "Kowalski", "Martinez", "Chen", "O'Brien", "Petrov", "Haugen", "Abdi", "Larsen", "Moua",
    "Fitzgerald", "Yamamoto", "Olawale", "Schmidt", "Andersen", "Dubois", "Kaur", "Bergstrom",
)
STAFF_TITLES = (
    ("Manager, Clinical Education", "admin"),
    ("Director of Nursing Education", "admin"),
    ("Student Placement Coordinator", "coordinator"),
    ("Student Placement Coordinator (Nursing & Allied Health)", "coordinator"),
    ("Residency & APPE Coordinator, Pharmacy", "coordinator"),
    ("Rehab Services Clinical Coordinator", "coordinator"),
    ("Unit Educator", "viewer"),
    ("Compliance Analyst (read-only access for audits)", "viewer"),
    ("Medical Staff Office", "viewer"),
)

PLACES = (
    ("Minneapolis", "MN", "554", "America/Chicago"),
    ("Saint Paul", "MN", "551", "America/Chicago"),
    ("Rochester", "MN", "559", "America/Chicago"),
    ("Duluth", "MN", "558", "America/Chicago"),
    ("Fargo", "ND", "581", "America/Chicago"),
    ("Bismarck", "ND", "585", "America/Chicago"),
    ("Sioux Falls", "SD", "571", "America/Chicago"),
    ("Rapid City", "SD", "577", "America/Denver"),
    ("Madison", "WI", "537", "America/Chicago"),
    ("Milwaukee", "WI", "532", "America/Chicago"),
    ("Des Moines", "IA", "503", "America/Chicago"),
    ("Omaha", "NE", "681", "America/Chicago"),
    ("Boston", "MA", "021", "America/New_York"),
    ("Hartford", "CT", "061", "America/New_York"),
    ("Boise", "ID", "837", "America/Boise"),
    ("Phoenix", "AZ", "850", "America/Phoenix"),
    ("Anchorage", "AK", "995", "America/Anchorage"),
    ("Detroit", "MI", "482", "America/Detroit"),
)
STREETS = (
    "Nicollet Mall", "Division Street South", "Jackson Boulevard", "University Avenue", "Lake Street",
    "Main Street", "Riverside Drive", "Hospital Drive", "Medical Center Parkway", "Summit Avenue",
)
NAME_WORDS = (
    "northstar", "mercy", "cedar-valley", "prairie", "lakeside", "riverbend", "pinecrest", "summit",
    "bluestem", "ironwood", "heartland", "granite", "meadowlark", "birchwood", "red-river", "aspen", "sage",
    "harbor", "willow-creek", "eagle-ridge", "bridgewater", "maple-grove", "stonebridge",
)
FACILITY_KINDS = (
    ("general", "hospital", "General Hospital"),
    ("medical-center", "hospital", "Medical Center"),
    ("regional", "hospital", "Regional Hospital"),
    ("childrens", "hospital", "Children's Hospital"),
    ("clinic", "clinic", "Clinic"),
    ("family-clinic", "clinic", "Family Clinic"),
    ("rehab", "other", "Rehabilitation Institute"),
    ("community", "hospital", "Community Hospital"),
)
# fmt: on


SHIFTS = ("12-hour shifts", "day shifts", "clinic days", "rotating shifts", "weekday shifts")


def short_school(name: str) -> str:
    """A school's name as coordinators abbreviate it in window names."""
    head = name.split(" — ")[0].split(",")[0]
    for long, short in (
        ("University of ", "U of "),
        ("University", "U"),
        ("College of ", ""),
        (" School of", ""),
    ):
        head = head.replace(long, short)
    return head.strip()


def title_words(slug_word: str) -> str:
    return " ".join(w.capitalize() for w in slug_word.split("-"))


# --------------------------------------------------------------------------------------------- model


@dataclass
class Window:
    key: str
    name: str
    workflow: str
    agreement: str | None
    disciplines: list[str]
    start: datetime.date
    end: datetime.date
    slots: int
    max_group_size: int | None = None
    allow_specific_dates: bool | None = None
    visibility: str | None = None
    description: str | None = None
    protect: bool = False
    comment: str = ""


@dataclass
class Svc:
    key: str
    name: str
    department: str | None
    location: str | None
    description: str | None
    disciplines: list[str]
    specialties: list[str]
    steps: list[str]
    step_comments: dict[str, str]
    flow_steps: bool
    protect: bool = False
    previous_keys: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)


@dataclass
class Agr:
    key: str
    school: str
    name: str
    description: str | None
    start: datetime.date
    end: datetime.date | None
    reminder_days: int | None
    services: list[str]
    disciplines: list[str]
    submit: bool
    protect: bool


@dataclass
class Org:
    index: int
    slug: str
    name: str
    type: str
    parent: str | None
    parent_name: str | None
    labels: dict[str, str]
    domain: str
    place: tuple[str, str, str, str]
    street: str
    rng: random.Random
    steps_text: list[str] = field(default_factory=list)
    services: list[Svc] = field(default_factory=list)
    schools: list[tuple[str, str, str, bool]] = field(default_factory=list)
    agreements: list[Agr] = field(default_factory=list)


@dataclass
class Shared:
    """A system-wide agreement: declared by the system, covering the facilities `covers` selects."""

    key: str
    school: str
    school_name: str
    name: str
    covers: dict[str, str] | None
    """None: `covers: all`; else the labels a covered facility carries."""
    candidates: list[str]
    """Catalog services it may link; written are those a covered facility has (`services`)."""
    disciplines: list[str]
    start: datetime.date
    end: datetime.date
    reminder_days: int | None
    submit: bool
    services: list[str] = field(default_factory=list)

    def covers_facility(self, labels: dict[str, str]) -> bool:
        return self.covers is None or all(labels.get(k) == v for k, v in self.covers.items())


@dataclass(frozen=True)
class System:
    index: int
    slug: str
    name: str
    domain: str
    library_steps: tuple[str, ...]
    """Keys of this system's steps that are not `all_services` (facilities list them per service)."""
    files: dict[str, str]
    shared: tuple[Shared, ...] = ()
    """Its system-wide agreements (none in a fleet written with `shared=False`)."""


CATALOG = {entry[0]: entry for entry in SERVICES}
"""The service catalog by key: what each system's service template holds."""


def _templates_text(name: str, slug: str) -> str:
    """A system's `templates.yaml`: one service template per catalog service (no randomness drawn, so
    the flat and templated fleets are the same configuration)."""
    lines = (
        _header(
            f"{name} — service templates.",
            [
                "A facility's service says `template: <key>` and writes only what differs; its own fields",
                "replace these (`department: null` clears one).",
            ],
        )
        + _doc_start(slug)
        + ["templates:"]
    )
    for skey, sname, dept, discs, _specs in SERVICES:
        lines += [
            f"  - key: {skey}",
            f"    name: {q(sname)}",
            f"    department: {q(dept)}",
            f"    disciplines: {flow(list(discs))}",
        ]
    return "\n".join(lines) + "\n"


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"nexus-fleet/{seed}/{kind}/{index}")


def _header(title: str, body: list[str]) -> list[str]:
    return [SCHEMA_LINE, "#", f"# {title}", *(f"# {line}" if line else "#" for line in body), ""]


def _doc_start(slug: str, parent: str | None = None, labels: dict[str, str] | None = None) -> list[str]:
    lines = ["apiVersion: nexus/v1", "kind: Organization", "metadata:", f"  slug: {slug}"]
    if parent:
        lines.append(f"  parent: {parent}   # inherits the system's steps; all_services steps apply here")
    if labels:
        lines.append("  labels:")
        lines.extend(f"    {k}: {q(v)}" for k, v in labels.items())
    lines.append("")
    return lines


def _staff_lines(rng: random.Random, domain: str, count: int) -> list[str]:
    lines = ["staff:"]
    used: set[str] = set()
    for n in range(count):
        while True:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            if local not in used:
                used.add(local)
                break
        title, role = STAFF_TITLES[0] if n == 0 else rng.choice(STAFF_TITLES)
        lines.append(f"  - email: {local}@{domain}")
        lines.append(f"    name: {q(first + ' ' + last)}")
        lines.append(f'    title: "{title}"' if rng.random() < 0.3 else f"    title: {q(title)}")
        lines.append(
            f"    role: {role}" + ("   # read-only" if role == "viewer" and rng.random() < 0.5 else "")
        )
    lines.append("")
    return lines


def _profile_lines(
    rng: random.Random,
    name: str,
    org_type: str,
    domain: str,
    place: tuple[str, str, str, str],
    street: str,
    parent_name: str | None,
) -> list[str]:
    city, state, zip3, tz = place
    beds = rng.randint(25, 650)
    about = (
        f"{name} has {beds} beds {'across its hospitals and clinics' if org_type == 'health_system' else ''}"
        f" in {city}, {state}"
        + (f", part of {parent_name}." if parent_name else ".")
        + " Students rotate alongside experienced preceptors in inpatient, outpatient and community settings;"
        " free parking for students in the visitor ramp and lockers near every unit."
    )
    lines = [
        "profile:",
        f"  name: {q(name)}",
        f"  type: {org_type}",
        "  description: |",
        *("    " + line for line in wrap(about, 92)),
        "",
        f"    - {rng.randint(2, 40)} specialty services open to students",
        "    - Housing stipends for rural rotations (ask the coordinator)",
        f"  website: https://www.{domain}/education",
        f"  email: student-placements@{domain}",
        f'  phone: "+1 {rng.randint(201, 989)}-555-{rng.randint(100, 199):04d}"',
        "  address:",
        f"    line1: {rng.randint(100, 9999)} {street}",
    ]
    if rng.random() < 0.5:
        lines.append(f"    line2: Suite {rng.randint(100, 1900)} — Clinical Education Office")
    lines += [
        f"    city: {city}",
        f"    state: {state}",
        f'    postal_code: "{zip3}{rng.randint(0, 99):02d}"   # quoted: keeps leading zeros',
        "    country: US",
        f"  timezone: {tz}",
        "",
    ]
    return lines


def _form_fields(rng: random.Random, indent: str) -> list[str]:
    lines = [f"{indent}fields:"]
    for key, label, ftype, options in rng.sample(FIELDS, rng.randint(2, 5)):
        lines.append(f"{indent}  - key: {key}")
        lines.append(f"{indent}    label: {q(label)}")
        lines.append(f"{indent}    type: {ftype}")
        if rng.random() < 0.6:
            lines.append(f"{indent}    required: {b(rng.random() < 0.7)}")
        if options:
            if rng.random() < 0.5:
                lines.append(f"{indent}    options: {flow(list(options))}")
            else:
                lines.append(f"{indent}    options:")
                lines.extend(f"{indent}      - {q(o)}" for o in options)
    return lines


# --------------------------------------------------------------------------------------------- systems


def _system(seed: int, j: int, flat: bool = False, shared: bool = False) -> System:
    rng = _rng(seed, "system", j)
    word = NAME_WORDS[j % len(NAME_WORDS)]
    slug = f"{word}-health-{j:03d}"
    name = f"{title_words(word)} Health {j:03d}"
    domain = f"{slug}.example.org"
    place = rng.choice(PLACES)
    street = rng.choice(STREETS)

    chosen = [s for s in SYSTEM_STEPS if s[8] or rng.random() < 0.75]
    if not any(not s[8] for s in chosen):
        chosen.append(next(s for s in SYSTEM_STEPS if not s[8]))
    lines = (
        _header(
            f"{name} — system-wide steps.",
            [
                "Steps with `all_services: true` apply to every service of this organization AND of every",
                "child facility. The others are a shared library: a facility opts a service in by listing",
                "the key.",
            ],
        )
        + _doc_start(slug)
        + ["steps:"]
    )
    stage = ""
    for key, st, sname, stype, by, desc, due, expires, all_services in chosen:
        if st != stage:
            stage = st
            lines.append(f"  # {'-' * 60} {stage}")
        lines += [f"  - key: {key}", f"    stage: {st}", f"    name: {q(sname)}", f"    type: {stype}"]
        if by != "student" or rng.random() < 0.3:
            lines.append(f"    completed_by: {by}")
        if desc:
            if len(desc) > 80:
                lines.append("    description: " + folded(wrap(desc, 90), "      "))
            else:
                lines.append(f"    description: {q(desc)}")
        if due is not None:
            lines.append(f"    due_days: {due}")
        if expires is not None:
            lines.append(f"    expires_after_days: {expires}   # annual requirement")
        if all_services:
            lines.append("    all_services: true")
        if stype == "form":
            lines += _form_fields(rng, "    ")
        lines.append("")
    steps_text = "\n".join(lines)

    profile = "\n".join(
        _header(
            f"{name} — system office.",
            ["The parent of every facility whose metadata.parent is " + slug + "."],
        )
        + _doc_start(
            slug, labels={"tier": "system", "region": place[1].lower(), "cost-center": str(4100 + j)}
        )
        + _profile_lines(rng, name, "health_system", domain, place, street, None)
    )
    staff = "\n".join(
        _header(f"{name} — Clinical Education office.", ["Configuration manages membership and role only."])
        + _doc_start(slug)
        + _staff_lines(rng, domain, 4)
    )
    files = {"profile.yaml": profile, "steps.yaml": steps_text, "staff.yaml": staff}
    if not flat:
        files["templates.yaml"] = _templates_text(name, slug)
    library = tuple(s[0] for s in chosen if not s[8])
    return System(j, slug, name, domain, library, files, _shared_agreements(seed, j, name) if shared else ())


SHARED_COVERS: tuple[dict[str, str] | None, ...] = (None, {"tier": "hospital"}, {"beds-band": "large"})
"""What each system-wide agreement covers: every facility (`covers: all`), then two label selectors."""


def _shared_agreements(seed: int, j: int, system_name: str) -> tuple[Shared, ...]:
    """A system's few system-wide agreements, drawn from a generator of their own (the system's other
    files stay those of a fleet without them); which services they link is settled once its facilities
    are known (`_settle_shared`)."""
    rng = _rng(seed, "system-shared", j)
    shared = []
    for covers, (skey, sname, sdiscs) in zip(
        SHARED_COVERS, rng.sample(SCHOOLS, len(SHARED_COVERS)), strict=True
    ):
        fitting = [entry for entry in SERVICES if set(entry[3]) & set(sdiscs)]
        candidates = [entry[0] for entry in fitting if rng.random() < 0.6] or [fitting[0][0]]
        union = {d for entry in fitting if entry[0] in candidates for d in entry[3]}
        year = rng.choice((2025, 2026))
        month = rng.choice((1, 7))
        shared.append(
            Shared(
                key=f"{skey}-system-{year}-{year + 3}",
                school=skey,
                school_name=sname,
                name=f"{short_school(sname)} — {system_name} System Affiliation {year}-{year + 3}",
                covers=covers,
                candidates=candidates,
                disciplines=[d for d in sdiscs if d in union],
                start=_month_start(year, month),
                end=_month_start(year + 3, month) - datetime.timedelta(days=1),
                reminder_days=rng.choice((None, 60, 90, 120)),
                submit=rng.random() < 0.9,
            )
        )
    return tuple(shared)


def _settle_shared(system: System, facilities: list[Org]) -> list[Shared]:
    """The system's agreements that cover a facility with one of their services, each with `services`
    set to those keys (a key no covered organization has would be an error)."""
    settled = []
    for agreement in system.shared:
        present = {
            svc.key for org in facilities if agreement.covers_facility(org.labels) for svc in org.services
        }
        agreement.services = [key for key in agreement.candidates if key in present]
        if agreement.services:
            settled.append(agreement)
    return settled


def _shared_text(system: System, agreements: list[Shared]) -> str:
    """A system's `agreements.yaml`: the schools of its system-wide agreements, and the agreements."""
    lines = (
        _header(
            f"{system.name} — system-wide schools and affiliation agreements.",
            [
                "Signed once for the facilities each one covers; a facility's window names one as",
                f"`agreement: {system.slug}/<key>`. The school answers once for the whole system.",
            ],
        )
        + _doc_start(system.slug)
        + ["schools:"]
    )
    seen: set[str] = set()
    for agreement in agreements:
        if agreement.school in seen:
            continue
        seen.add(agreement.school)
        lines += [
            f"  - key: {agreement.school}",
            f"    name: {q(agreement.school_name)}",
            f"    contact_email: clinical-affiliations@{agreement.school}.example.edu",
        ]
    lines += ["", "agreements:"]
    for agreement in agreements:
        lines += [
            f"  - key: {agreement.key}",
            f"    school: {agreement.school}",
            f"    name: {q(agreement.name)}",
        ]
        if agreement.covers is None:
            lines.append("    covers: all                # every facility of the system")
        else:
            lines.append("    covers:")
            lines.append(
                "      labels: {" + ", ".join(f"{k}: {q(v)}" for k, v in agreement.covers.items()) + "}"
            )
        lines += [
            f"    start_date: {agreement.start.isoformat()}",
            f"    end_date: {agreement.end.isoformat()}",
        ]
        if agreement.reminder_days:
            lines.append(f"    reminder_days: {agreement.reminder_days}")
        lines.append("    services:")
        lines.extend(f"      - {key}" for key in agreement.services)
        lines.append(f"    disciplines: {flow(agreement.disciplines)}")
        lines.append(f"    submit: {b(agreement.submit)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- facilities


def _term(d: datetime.date) -> str:
    return "spring" if d.month < 5 else "summer" if d.month < 8 else "fall"


def _month_start(year: int, month: int) -> datetime.date:
    return datetime.date(year, month, 1)


def _facility(seed: int, i: int, system: System) -> Org:
    rng = _rng(seed, "facility", i)
    word = rng.choice(NAME_WORDS)
    kind_slug, org_type, kind_name = rng.choice(FACILITY_KINDS)
    slug = f"{word}-{kind_slug}-{i:04d}"
    place = rng.choice(PLACES)
    org = Org(
        index=i,
        slug=slug,
        name=f"{title_words(word)} {kind_name} {i}",
        type=org_type,
        parent=system.slug,
        parent_name=system.name,
        labels={
            "region": place[1].lower(),
            "tier": org_type,
            "beds-band": rng.choice(("small", "medium", "large")),
        },
        domain=f"{slug}.example.org",
        place=place,
        street=rng.choice(STREETS),
        rng=rng,
    )
    if rng.random() < 0.3:
        org.labels["cost-center"] = str(rng.randint(1000, 9999))

    # steps -----------------------------------------------------------------
    forms = [s for s in FACILITY_STEPS if s[3] == "form"]
    others = [s for s in FACILITY_STEPS if s[3] != "form"]
    picked = rng.sample(forms, 5) + rng.sample(others, 10)
    stage_order = {"application": 0, "onboarding": 1, "offboarding": 2}
    picked.sort(key=lambda s: (stage_order[s[1]], s[0]))
    facility_step_keys = [s[0] for s in picked]

    # schools & agreements ---------------------------------------------------
    schools = rng.sample(SCHOOLS, 20)
    for skey, sname, _ in schools:
        # Every school carries a contact: on a fresh platform none is registered yet, and nexus refuses
        # to partner with an unregistered school it cannot invite. A quarter say so in a comment.
        invite = rng.random() < 0.25
        email = f"clinical-placements@{skey}.example.edu"
        org.schools.append((skey, sname, email, invite))

    # services -----------------------------------------------------------------
    catalog = rng.sample(SERVICES, 30)
    library = list(system.library_steps)
    for skey, sname, dept, discs, specs in catalog:
        discs_l = list(discs) if rng.random() < 0.7 else rng.sample(discs, max(1, len(discs) - 1))
        step_pool = facility_step_keys + library
        steps = rng.sample(step_pool, rng.randint(2, 4))
        comments = {k: "inherited from " + system.slug for k in steps if k in system.library_steps}
        about = rng.choice(
            (
                None,
                None,
                f"{rng.randint(8, 60)} beds; students work {rng.choice(SHIFTS)} with a dedicated preceptor.",
                f"About {rng.randint(3, 90)},000 visits a year; {rng.choice(SHIFTS)}.",
            )
        )
        svc = Svc(
            key=skey,
            name=sname,
            department=dept if rng.random() < 0.7 else None,
            location=rng.choice(LOCATIONS) if rng.random() < 0.6 else None,
            description=about,
            disciplines=discs_l,
            specialties=rng.sample(specs, rng.randint(1, min(2, len(specs)))),
            steps=steps,
            step_comments=comments,
            flow_steps=rng.random() < 0.65,
            protect=rng.random() < 0.15,
            previous_keys=[f"{skey}-unit"] if rng.random() < 0.05 else [],
        )
        org.services.append(svc)

    position = {svc.key: n for n, svc in enumerate(org.services)}
    for skey, sname, sdiscs in schools:
        candidates = [svc for svc in org.services if set(svc.disciplines) & set(sdiscs)]
        if candidates:
            covered = rng.sample(candidates, min(len(candidates), rng.randint(2, 4)))
            union = {d for svc in covered for d in svc.disciplines}
            agr_discs = [d for d in sdiscs if d in union]
        else:  # no service fits the school's programs: a single-service "other" agreement
            covered = [rng.choice(org.services)]
            agr_discs = [covered[0].disciplines[0]]
        covered.sort(key=lambda s: position[s.key])
        year = rng.choice((2025, 2026, 2026, 2027))
        month = rng.choice((1, 7, 7, 8, 9))
        start = _month_start(year, month)
        open_ended = rng.random() < 0.15
        years = rng.randint(1, 3)
        end = None if open_ended else _month_start(year + years, month) - datetime.timedelta(days=1)
        key = f"{skey}-evergreen" if end is None else f"{skey}-{year}-{year + years}"
        school_name = sname
        org.agreements.append(
            Agr(
                key=key,
                school=skey,
                name=(
                    f"{short_school(school_name)} — Evergreen Affiliation"
                    if end is None
                    else f"{short_school(school_name)} — Affiliation {year}-{year + years}"
                ),
                description=(
                    "Open-ended; either party may terminate with 90 days' written notice."
                    if end is None
                    else rng.choice(
                        (
                            None,
                            None,
                            None,
                            "Master template v7; liability limits per the system's standard terms.",
                            "Cohort and preceptorship placements. Renewal needs a full semester with the "
                            "school's legal office.",
                        )
                    )
                ),
                start=start,
                end=end,
                reminder_days=None
                if end is None or rng.random() < 0.3
                else rng.choice((30, 45, 60, 90, 120)),
                services=[s.key for s in covered],
                disciplines=agr_discs,
                submit=rng.random() < 0.8,
                protect=rng.random() < 0.2,
            )
        )

    # capacity windows: 100 over 30 services, each service at least one --------------------
    counts = [1] * len(org.services)
    for _ in range(100 - len(org.services)):
        counts[rng.randrange(len(org.services))] += 1
    eligible: dict[str, list[tuple[Agr | Shared, list[str]]]] = {}
    shared: dict[str, list[tuple[Agr | Shared, list[str]]]] = {}
    covering = [agr for agr in system.shared if agr.covers_facility(org.labels)]
    for svc in org.services:
        eligible[svc.key] = _pairs(svc, [agr for agr in org.agreements if svc.key in agr.services])
        shared[svc.key] = _pairs(svc, [agr for agr in covering if svc.key in agr.candidates])
    school_labels = {k: short_school(n) for k, n, _ in schools}
    school_labels.update((agr.school, short_school(agr.school_name)) for agr in covering)
    for svc, count in zip(org.services, counts, strict=True):
        used: set[str] = set()
        for _ in range(count):
            pairs = eligible[svc.key]
            if pairs and rng.random() < 0.6:
                if shared[svc.key] and rng.random() < 0.3:  # some windows under a system-wide agreement
                    pairs = shared[svc.key]
                agr, common = rng.choice(pairs)
                horizon_end = agr.end or (agr.start + datetime.timedelta(days=1000))
                span = (horizon_end - agr.start).days
                length = min(span, rng.choice((27, 34, 41, 55, 83, 111)))
                offset = rng.randint(0, max(0, span - length))
                start = agr.start + datetime.timedelta(days=offset)
                end = start + datetime.timedelta(days=length)
                window_discs = rng.sample(common, rng.randint(1, len(common)))
                base = f"{agr.school}-{_term(start)}-{start.year}"
                name = f"{school_labels[agr.school]} cohort, {_term(start).capitalize()} {start.year}"
                workflow = "coordinator_scheduled"
                agreement = f"{system.slug}/{agr.key}" if isinstance(agr, Shared) else agr.key
            else:
                year = rng.choice((2026, 2027, 2027, 2028))
                start = datetime.date(year, rng.choice((1, 3, 5, 6, 8, 9)), rng.randint(1, 28))
                end = start + datetime.timedelta(days=rng.choice((28, 56, 90, 120, 180, 300)))
                window_discs = rng.sample(svc.disciplines, rng.randint(1, len(svc.disciplines)))
                base = f"open-{_term(start)}-{start.year}"
                name = f"Electives {_term(start).capitalize()} {start.year}" + (
                    " (apply with your own dates)" if rng.random() < 0.3 else ""
                )
                workflow, agreement = "student_requested", None
            key = base
            n = 2
            while key in used:
                key = f"{base}-{n}"
                n += 1
            used.add(key)
            w = Window(key, name, workflow, agreement, window_discs, start, end, rng.randint(1, 24))
            roll = rng.random()
            if roll < 0.25:
                w.max_group_size = rng.randint(2, 10)
            if workflow == "student_requested" and rng.random() < 0.5:
                w.allow_specific_dates = True
            if rng.random() < 0.1:
                w.visibility = "draft"
            if rng.random() < 0.05:
                w.description = rng.choice(
                    (
                        "Day shifts 06:45-15:15; one instructor per group on the unit.",
                        "Four-week blocks; 12-hour shifts incl. 2 nights and 1 weekend a block.",
                        "1:1 with a preceptor; minimum 120 hours.",
                        "Students propose their own 4-week block inside the window.",
                    )
                )
            if rng.random() < 0.05:
                w.protect = True
                w.comment = "students confirmed"
            svc.windows.append(w)

    # steps text (rendered now: it depends only on this org's rng, so it stays deterministic) ------
    org.steps_text = _facility_steps_lines(rng, picked, [s[0] for s in schools])
    return org


def _pairs(svc: Svc, agreements: list[Any]) -> list[tuple[Agr | Shared, list[str]]]:
    """The agreements a window of `svc` may be scheduled under, each with the disciplines they share."""
    pairs: list[tuple[Agr | Shared, list[str]]] = []
    for agr in agreements:
        common = [d for d in svc.disciplines if d in agr.disciplines]
        if common:
            pairs.append((agr, common))
    return pairs


def _facility_steps_lines(rng: random.Random, picked: list[Any], school_keys: list[str]) -> list[str]:
    lines = ["steps:"]
    stage = ""
    for key, st, sname, stype, by, desc, instr, due, expires in picked:
        if st != stage:
            stage = st
            lines.append(f"  # {'-' * 60} {stage}")
        lines += [f"  - key: {key}", f"    stage: {st}", f"    name: {q(sname)}", f"    type: {stype}"]
        if by != "student" or rng.random() < 0.25:
            lines.append(
                f"    completed_by: {by}" + ("       # the default, spelled out" if by == "student" else "")
            )
        if desc:
            if len(desc) > 70 and rng.random() < 0.6:
                lines.append("    description: " + folded(wrap(desc, 80), "      "))
            else:
                lines.append(f"    description: {q(desc)}")
        if instr:
            lines.append(f"    instructions: {q(instr)}")
        if rng.random() < 0.12:
            lines.append("    required: false             # encouraged, not required")
        if due is not None:
            lines.append(f"    due_days: {due}")
        if expires is not None:
            lines.append(f"    expires_after_days: {expires}")
        roll = rng.random()
        if roll < 0.15:
            lines += ["    applies_to:", "      workflows: [student_requested]"]
        elif roll < 0.25:
            lines += ["    applies_to:", f"      disciplines: {flow(rng.sample(DISCIPLINES[:6], 2))}"]
        elif roll < 0.3:
            lines += [
                "    applies_to:",
                "      schools:",
                *(f"        - {k}" for k in rng.sample(school_keys, 2)),
            ]
        if rng.random() < 0.08:
            lines.append("    all_services: true")
        if stype == "form":
            lines += _form_fields(rng, "    ")
        lines.append("")
    return lines


# --------------------------------------------------------------------------------------------- changes


def _apply_changes(org: Org, seed: int, change_round: int) -> None:
    """A few in-place value changes: slots of 3 windows, one service name, one agreement's reminder."""
    rng = _rng(seed, f"change-{change_round}", org.index)
    windows = [w for svc in org.services for w in svc.windows]
    for w in rng.sample(windows, 3):
        w.slots = w.slots + 1 + (change_round % 5) if w.slots + 6 <= 1000 else w.slots - 1
    svc = rng.choice(org.services)
    svc.name = f"{svc.name} (revised r{change_round})"[:200]
    dated = [a for a in org.agreements if a.reminder_days is not None]
    if dated:
        agr = rng.choice(dated)
        agr.reminder_days = 1 + ((agr.reminder_days or 0) + 7 * (change_round + 1)) % 365


def _changed_indices(seed: int, facilities: int, fraction: float, change_round: int) -> set[int]:
    if fraction <= 0 or facilities == 0:
        return set()
    count = min(facilities, max(1, round(fraction * facilities)))
    rng = random.Random(f"nexus-fleet/{seed}/changed/{change_round}")
    return set(rng.sample(range(facilities), count))


# --------------------------------------------------------------------------------------------- render


def _render_facility(org: Org, system: System, flat: bool = False) -> dict[str, str]:
    rng = org.rng
    head = f"{org.name} — a facility of {system.name}."
    files: dict[str, str] = {}

    files["profile.yaml"] = "\n".join(
        _header(
            head,
            [
                f"Files of this organization (all with metadata.slug: {org.slug}, merged by nexus):",
                "  profile.yaml     — metadata (parent, labels) and the public profile",
                "  steps.yaml       — facility steps (system-wide ones come from the parent)",
                "  services.yaml    — services and their capacity windows",
                "  agreements.yaml  — partner schools and affiliation agreements",
                "  staff.yaml       — who administers this organization",
            ],
        )
        + _doc_start(org.slug, org.parent, org.labels)
        + _profile_lines(rng, org.name, org.type, org.domain, org.place, org.street, org.parent_name)
    )

    files["steps.yaml"] = "\n".join(
        _header(
            f"{org.name} — facility steps.",
            [f"Steps of the parent ({system.slug}) resolve too: list their keys under a service's `steps:`."],
        )
        + _doc_start(org.slug)
        + org.steps_text
    )

    out = (
        _header(
            f"{org.name} — services and capacity windows.",
            [
                "Capacity workflows:",
                "  coordinator_scheduled — a school's cohort, linked to an `agreement` (agreements.yaml)",
                "                          that covers the service, its disciplines and the window's dates",
                "  student_requested     — open to students of any school; no agreement",
            ],
        )
        + _doc_start(org.slug)
        + ["services:"]
    )
    add = out.append
    for svc in org.services:
        add(f"  - key: {svc.key}")
        _, catalog_name, catalog_department, catalog_disciplines, _ = CATALOG[svc.key]
        if not flat:
            add(f"    template: {svc.key}")
        if flat or svc.name != catalog_name:
            add(f"    name: {q(svc.name)}")
        if svc.description:
            add(f"    description: {q(svc.description)}")
        if svc.department and (flat or svc.department != catalog_department):
            add(f"    department: {q(svc.department)}")
        elif not svc.department and not flat:
            add("    department: null   # not part of a department here")
        if svc.location:
            add(f"    location: {q(svc.location)}")
        if flat or svc.disciplines != list(catalog_disciplines):
            add(f"    disciplines: {flow(svc.disciplines)}")
        add(f"    specialties: {flow(svc.specialties)}")
        if svc.protect:
            add("    protect: true   # core service with booked rotations every term")
        if svc.previous_keys:
            add(f"    previous_keys: {flow(svc.previous_keys)}   # renamed; keeps windows and rotations")
        if svc.flow_steps:
            add(f"    steps: {flow(svc.steps)}")
        else:
            add("    steps:")
            for k in svc.steps:
                c = svc.step_comments.get(k)
                add(f"      - {k}" + (f"   # {c}" if c else ""))
        add("    capacity:")
        for w in svc.windows:
            add(f"      - key: {w.key}")
            add(f"        name: {q(w.name)}")
            add(f"        workflow: {w.workflow}")
            if w.agreement:
                add(f"        agreement: {w.agreement}")
            add(f"        disciplines: {flow(w.disciplines)}")
            add(f"        start_date: {w.start.isoformat()}")
            add(f"        end_date: {w.end.isoformat()}")
            add(f"        slots: {w.slots}")
            if w.max_group_size:
                add(f"        max_group_size: {w.max_group_size}")
            if w.allow_specific_dates:
                add("        allow_specific_dates: true")
            if w.visibility:
                add(f"        visibility: {w.visibility}")
            if w.description:
                add(f"        description: {q(w.description)}")
            if w.protect:
                add(f"        protect: true   # {w.comment}")
        add("")
    files["services.yaml"] = "\n".join(out)

    out = (
        _header(
            f"{org.name} — partner schools and affiliation agreements.",
            [
                "A school not on the platform yet needs a `contact_email`: nexus sends the invitation there.",
                "submit: true sends the agreement to the school for approval; false keeps it a draft.",
            ],
        )
        + _doc_start(org.slug)
        + ["schools:"]
    )
    add = out.append
    for skey, sname, email, invite in org.schools:
        add(f"  - key: {skey}")
        add(f"    name: {q(sname)}")
        add(f"    contact_email: {email}" + ("   # not on the platform yet: invite" if invite else ""))
    add("")
    add("agreements:")
    for a in org.agreements:
        add(f"  - key: {a.key}")
        add(f"    school: {a.school}")
        add(f"    name: {q(a.name)}")
        if a.description:
            if len(a.description) > 80:
                add("    description: " + folded(wrap(a.description, 80), "      "))
            else:
                add(f"    description: {q(a.description)}")
        add(f"    start_date: {a.start.isoformat()}")
        if a.end:
            add(f"    end_date: {a.end.isoformat()}")
        else:
            add("    # no end_date: open-ended agreement")
        if a.reminder_days:
            add(f"    reminder_days: {a.reminder_days}")
        if len(a.services) > 3:
            add("    services:")
            out.extend(f"      - {k}" for k in a.services)
        else:
            add(f"    services: {flow(a.services)}")
        add(f"    disciplines: {flow(a.disciplines)}")
        add(f"    submit: {b(a.submit)}" + ("" if a.submit else "   # stays a draft until Legal signs off"))
        if a.protect:
            add("    protect: true")
        add("")
    files["agreements.yaml"] = "\n".join(out)

    files["staff.yaml"] = "\n".join(
        _header(f"{org.name} — staff.", ["Roles: admin (everything), coordinator, viewer (read-only)."])
        + _doc_start(org.slug)
        + _staff_lines(rng, org.domain, 5)
    )
    return files


# --------------------------------------------------------------------------------------------- API


def default_systems(facilities: int) -> int:
    return max(1, -(-facilities // 20))


def write_fleet(
    out_dir: Path,
    facilities: int,
    *,
    seed: int = 0,
    systems: int | None = None,
    changed_fraction: float = 0.0,
    change_round: int = 0,
    flat: bool = False,
    shared: bool | None = None,
) -> list[Path]:
    """Write the fleet under `out_dir` and return the written YAML files (sorted); `flat`: services in
    full, no templates; `shared` (default: not `flat`): system-wide agreements some windows use.

    A previous fleet in `out_dir` (found through its manifest) is removed first; a non-empty
    directory without a manifest is refused rather than overwritten.
    """
    if facilities < 0:
        raise ValueError("facilities must be >= 0")
    if not 0.0 <= changed_fraction <= 1.0:
        raise ValueError("changed_fraction must be within 0..1")
    out_dir = Path(out_dir)
    n_systems = systems if systems is not None else default_systems(facilities)
    if n_systems < 1:
        raise ValueError("systems must be >= 1")
    _prepare(out_dir)

    written: list[Path] = []
    org_dirs: list[str] = []

    def emit(slug: str, files: dict[str, str]) -> None:
        directory = out_dir / slug
        directory.mkdir(parents=True, exist_ok=True)
        org_dirs.append(slug)
        for name, text in files.items():
            path = directory / name
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            written.append(path)

    share = not flat if shared is None else shared
    members: dict[int, list[int]] = {}
    for i in range(facilities):
        members.setdefault(i * n_systems // facilities, []).append(i)
    changed = _changed_indices(seed, facilities, changed_fraction, change_round)
    for j in range(n_systems):
        system = _system(seed, j, flat, share)
        orgs = [_facility(seed, i, system) for i in members.get(j, ())]
        settled = _settle_shared(system, orgs)
        if settled:
            system.files["agreements.yaml"] = _shared_text(system, settled)
        emit(system.slug, system.files)
        for org in orgs:
            if org.index in changed:
                _apply_changes(org, seed, change_round)
            emit(org.slug, _render_facility(org, system, flat))

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "facilities": facilities,
        "systems": n_systems,
        "seed": seed,
        "changed_fraction": changed_fraction,
        "change_round": change_round,
        "flat": flat,
        "shared": share,
        "changed_facilities": sorted(changed),
        "org_dirs": org_dirs,
        "files": len(written),
        "bytes": sum(p.stat().st_size for p in written),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return sorted(written)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest


def _prepare(out_dir: Path) -> None:
    if out_dir.exists():
        manifest = read_manifest(out_dir)
        if manifest is not None:
            for slug in manifest.get("org_dirs", ()):
                target = out_dir / slug
                if "/" not in slug and target.is_dir():
                    shutil.rmtree(target)
            (out_dir / MANIFEST).unlink()
        elif any(out_dir.iterdir()):
            raise FileExistsError(
                f"{out_dir} is not empty and holds no {MANIFEST}: refusing to write a fleet there"
            )
    out_dir.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--facilities", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", type=int, default=None, help="default: one per 20 facilities")
    parser.add_argument(
        "--changed", type=float, default=0.0, help="fraction of facilities with changed values"
    )
    parser.add_argument("--round", type=int, default=0, dest="change_round", help="which change round")
    parser.add_argument("--flat", action="store_true", help="services written in full, no templates")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = write_fleet(
            args.out_dir,
            args.facilities,
            seed=args.seed,
            systems=args.systems,
            changed_fraction=args.changed,
            change_round=args.change_round,
            flat=args.flat,
        )
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    manifest = read_manifest(args.out_dir) or {}
    size = manifest.get("bytes", 0)
    print(
        f"wrote {len(files)} files, {size / 1e6:.1f} MB for {args.facilities} facilities under "
        f"{manifest.get('systems')} health systems in {elapsed:.2f} s"
        + (f"; {len(manifest.get('changed_facilities', []))} facilities changed" if args.changed else "")
        + f" -> {os.fspath(args.out_dir)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
